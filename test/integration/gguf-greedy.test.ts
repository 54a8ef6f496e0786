import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { openGguf } from '../../src/model/builder/sources/gguf/index.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { LoadedModel } from '../../src/model/types.js';
import { SHARED_DATA } from '../helpers/paths.js';
import { withContextLength } from '../../src/model/builder/source.js';

const DIR = join(SHARED_DATA, 'models/stories260K');
const GGUF = `${DIR}/stories260Ktok512.gguf`;
const REFERENCE = `${DIR}/greedy_reference.json`;
const present = existsSync(GGUF) && existsSync(REFERENCE);
if (!present) console.warn(`skipping GGUF greedy test: ${GGUF} or ${REFERENCE} is absent`);

interface Case {
  prompt_ids: number[];
  output_ids: number[];
  steps: number;
}

/** Plain greedy decoding as run.c does it: stop at BOS or after `steps` positions; the output includes the prompt. */
async function greedy(model: LoadedModel, promptIds: number[], steps: number): Promise<number[]> {
  const seq = model.newSequence();
  const vocab = model.info.vocabSize;
  const ids = [...promptIds];
  let logits = await seq.forward({ tokens: Int32Array.from(ids), positions: Int32Array.from(ids, (_, i) => i), mask: null });
  while (ids.length < steps) {
    const last = logits.subarray(logits.length - vocab);
    let best = 0;
    for (let v = 1; v < vocab; v++) if (last[v] > last[best]) best = v;
    if (best === 1) break;
    ids.push(best);
    logits = await seq.forward({ tokens: Int32Array.of(best), positions: Int32Array.of(ids.length - 1), mask: null });
  }
  seq.dispose();
  return ids;
}

describe.skipIf(!present)('stories260K from GGUF through the builder', () => {
  const root = mkdtempSync(join(tmpdir(), 'gguf-greedy-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reproduces the llama2.c greedy reference token for token (interleaved RoPE, context 512)', async () => {
    const cases = (JSON.parse(readFileSync(REFERENCE, 'utf8')) as { cases: Case[] }).cases;
    await buildModel(withContextLength(openGguf(GGUF), 512), { dtype: 'fp32', attention: 'onnx', layout: 'tree' }, root);
    const model = await openBuiltModel(root);
    try {
      for (const c of cases) expect(await greedy(model, c.prompt_ids, c.steps)).toEqual(c.output_ids);
    } finally {
      await model.dispose();
    }
  });
});
