import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LookaheadOptions } from '../../src/engine/types.js';
import { CHAT_MODEL, LOOKAHEAD_OFF, SHARED, startEngine, STORIES_GGUF, type TestEngine } from '../helpers/engine.js';
import { webgpuUnavailable } from '../helpers/webgpu.js';

/**
 * The GPU path end to end (engine worker, device-resident K/V, in-graph argmax) on the WebGPU EP: greedy output
 * token for token the CPU EP's, with lookahead off and on in every layout. Generations stay short: a forward costs
 * ~30-40 ms on lavapipe.
 */
const LAYOUTS: LookaheadOptions[] = (['hier', 'par', 'one'] as const).map((layout) => ({ enabled: true, layout, decodingLength: 8, branchLength: 4 }));
const MAX_TOKENS = 16;

const models = [
  { name: 'stories260K', path: STORIES_GGUF, prompts: ['Once upon a time'] },
  { name: 'chat-llama-5m', path: CHAT_MODEL, prompts: ['Tell me a story about the sea.'] },
];

for (const m of models) {
  const missing = !existsSync(m.path);
  if (missing) console.warn(`SKIPPED webgpu ${m.name} tests: ${SHARED} is absent`);

  describe.skipIf(webgpuUnavailable !== null || missing)(`webgpu vs cpu: ${m.name}`, () => {
    let gpu: TestEngine;
    let cpu: TestEngine;
    let prompts: number[][];
    const reference: number[][] = [];

    beforeAll(async () => {
      [cpu, gpu] = [await startEngine(['--model', m.path]), await startEngine(['--model', m.path, '--execution-provider', 'webgpu'])];
      const tok = cpu.engine.tokenizer(cpu.modelId);
      prompts = m.prompts.map((p) => tok.encode(p, { addSpecialTokens: true }));
      for (const ids of prompts) reference.push((await cpu.run(ids, { maxTokens: MAX_TOKENS, lookahead: LOOKAHEAD_OFF })).ids);
    });
    afterAll(async () => {
      await gpu?.close();
      await cpu?.close();
    });

    it('runs on the webgpu EP with the K/V on the device', () => {
      expect(gpu.engine.models[0].executionProvider).toBe('webgpu');
      expect(cpu.engine.models[0].executionProvider).toBe('cpu');
    });

    it('lookahead off: greedy tokens identical to the CPU EP', async () => {
      for (let p = 0; p < prompts.length; p++) {
        expect((await gpu.run(prompts[p], { maxTokens: MAX_TOKENS, lookahead: LOOKAHEAD_OFF })).ids, `prompt ${p}`).toEqual(reference[p]);
      }
    });

    for (const lookahead of LAYOUTS) {
      it(`lookahead ${lookahead.layout}: greedy tokens identical to the CPU EP, drafts accepted`, async () => {
        let accepted = 0;
        for (let p = 0; p < prompts.length; p++) {
          // The CPU answer as the client's prediction: drafts that are mostly right, so accepted paths get kept.
          const { ids, result } = await gpu.run(prompts[p], { maxTokens: MAX_TOKENS, lookahead, predictionIds: reference[p] });
          expect(ids, `prompt ${p}`).toEqual(reference[p]);
          accepted += result.lookahead.acceptedTokens;
        }
        expect(accepted).toBeGreaterThan(0);
      });
    }

    it('seeded sampling is identical to itself (logits path on the device)', async () => {
      const sampling = { temperature: 0.9, topP: 0.95, topK: 0, repetitionPenalty: 1, seed: 1234 };
      const a = await gpu.run(prompts[0], { maxTokens: MAX_TOKENS, sampling, lookahead: LAYOUTS[0], predictionIds: reference[0] });
      const b = await gpu.run(prompts[0], { maxTokens: MAX_TOKENS, sampling, lookahead: LOOKAHEAD_OFF });
      expect(a.ids.length).toBeGreaterThan(0);
      expect(b.ids).toEqual(a.ids);
    });
  });
}
