import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../src/errors.js';
import { isForeignExport, openForeignModel } from '../../src/model/runtime/foreign-model.js';
import { maxAbsDiff } from '../unit/builder-reference.js';
import { SHARED_DATA } from '../helpers/paths.js';

const dir = join(SHARED_DATA, 'models/stories260K');
const present = existsSync(join(dir, 'onnx', 'model.onnx'));
if (!present) console.warn(`skipping foreign-export tests: ${dir}/onnx/model.onnx is absent`);

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

describe.skipIf(!present)('foreign export (stories260K, HF Optimum layout)', () => {
  it('is detected, loads as chain-only, and decodes greedily', async () => {
    expect(await isForeignExport(join(dir, 'onnx', 'model.onnx'))).toBe(true);
    const model = await openForeignModel(dir);
    expect(model.info.treeMask).toBe(false);
    expect(model.info.vocabSize).toBe(512);
    const V = model.info.vocabSize;
    const seq = model.newSequence();
    const prompt = [1, 403, 407, 261];
    let logits = await seq.forward({ tokens: Int32Array.from(prompt), positions: Int32Array.from(prompt, (_, i) => i), mask: null });
    const out: number[] = [];
    for (let step = 0; step < 12; step++) {
      const next = argmax(logits.subarray(logits.length - V));
      expect(next).toBeGreaterThanOrEqual(0);
      expect(next).toBeLessThan(V);
      out.push(next);
      logits = await seq.forward({ tokens: Int32Array.of(next), positions: Int32Array.of(seq.length), mask: null });
    }
    expect(seq.length).toBe(prompt.length + 12);
    const reference = JSON.parse(readFileSync(join(dir, 'greedy_reference.json'), 'utf8')).cases[0].output_ids as number[];
    expect(reference.slice(0, 4)).toEqual(prompt);
    expect(out).toEqual(reference.slice(4, 16));

    // A chain draft verified in one forward, then kept partly, continues like plain decoding.
    const chain = model.newSequence();
    await chain.forward({ tokens: Int32Array.from(prompt), positions: Int32Array.from(prompt, (_, i) => i), mask: null });
    const draft = Int32Array.from(out.slice(0, 5));
    await chain.forward({ tokens: draft, positions: Int32Array.from(draft, (_, i) => prompt.length + i), mask: null });
    chain.keep(prompt.length, [prompt.length, prompt.length + 1, prompt.length + 2]);
    const a = await chain.forward({ tokens: Int32Array.of(out[3]), positions: Int32Array.of(prompt.length + 3), mask: null });
    const plain = model.newSequence();
    await plain.forward({ tokens: Int32Array.from([...prompt, ...out.slice(0, 3)]), positions: Int32Array.from({ length: 7 }, (_, i) => i), mask: null });
    const b = await plain.forward({ tokens: Int32Array.of(out[3]), positions: Int32Array.of(7), mask: null });
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-4);
    expect(argmax(a)).toBe(out[4]);

    // Tree masks and non-chain keeps are refused.
    // Two siblings after 8 cached rows: the second must not see the first.
    const siblings = new Float32Array(2 * 10).fill(0);
    siblings[9] = -Infinity;
    siblings[10 + 8] = -Infinity;
    await expect(plain.forward({ tokens: Int32Array.of(1, 2), positions: Int32Array.of(8, 8), mask: siblings })).rejects.toBeInstanceOf(InvalidRequestError);
    expect(() => plain.keep(0, [1])).toThrow(InvalidRequestError);
    await model.dispose();
  });
});
