import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { openHfDir } from '../../src/model/builder/sources/hf-dir.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import { SHARED_DATA } from '../helpers/paths.js';

const DIR = join(SHARED_DATA, 'models/chat-llama-5m');
const REFERENCE = `${DIR}/greedy_reference.json`;
const present = existsSync(join(DIR, 'model.safetensors')) && existsSync(REFERENCE);
if (!present) console.warn(`skipping HF-dir greedy test: ${DIR} is absent`);

interface Reference {
  eos_token_id: number;
  max_new_tokens: number;
  cases: { prompt_ids: number[]; output_ids: number[] }[];
}

describe.skipIf(!present)('chat-llama-5m from safetensors through the builder', () => {
  const root = mkdtempSync(join(tmpdir(), 'hf-dir-greedy-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reproduces the PyTorch greedy reference token for token (rotate_half RoPE, BF16 weights)', async () => {
    const ref = JSON.parse(readFileSync(REFERENCE, 'utf8')) as Reference;
    await buildModel(openHfDir(DIR), { dtype: 'fp32', attention: 'onnx', layout: 'tree' }, root);
    const model = await openBuiltModel(root);
    const vocab = model.info.vocabSize;
    try {
      for (const c of ref.cases) {
        const seq = model.newSequence();
        const out: number[] = [];
        const prompt = Int32Array.from(c.prompt_ids);
        let logits = await seq.forward({ tokens: prompt, positions: Int32Array.from(prompt, (_, i) => i), mask: null });
        while (out.length < ref.max_new_tokens) {
          const last = logits.subarray(logits.length - vocab);
          let best = 0;
          for (let v = 1; v < vocab; v++) if (last[v] > last[best]) best = v;
          out.push(best);
          if (best === ref.eos_token_id) break;
          logits = await seq.forward({ tokens: Int32Array.of(best), positions: Int32Array.of(c.prompt_ids.length + out.length - 1), mask: null });
        }
        seq.dispose();
        expect(out).toEqual(c.output_ids);
      }
    } finally {
      await model.dispose();
    }
  });
});
