import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topIds } from '../../src/lookahead/recycled.js';
import { buildModel } from '../../src/model/builder/build.js';
import { TOP_IDS } from '../../src/model/builder/graph-boundary.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { ForwardInput, LoadedModel } from '../../src/model/types.js';

// The graph's next_top output (what drafting's recycled table learns from on the ids path): each row's best ids,
// best first, as the logits rank them — alone and in a batched forward — with the argmax first, so no logits need
// to leave the graph for drafting to learn what the model would say.
const root = mkdtempSync(join(tmpdir(), 'top-ids-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const VOCAB = 512;

function input(tokens: number[], past: number): ForwardInput {
  return { tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => past + i), mask: null };
}

describe('next_top: the in-graph top-k ids', () => {
  let model: LoadedModel;

  beforeAll(async () => {
    const dir = join(root, 'model');
    const source = new SyntheticSource(syntheticConfig({ hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: VOCAB, maxPositions: 256 }), 5);
    await buildModel(source, { dtype: 'fp32', attention: 'exact', layout: 'tree' }, dir);
    model = await openBuiltModel(dir, { threads: 1 });
  }, 120_000);
  afterAll(() => model?.dispose());

  it('ranks every row as its logits do, argmax first, alone and batched', async () => {
    const k = model.info.topIds!;
    expect(k).toBe(TOP_IDS);
    const prompts = [
      [3, 17, 99, 4, 250, 7, 7, 31],
      [400, 2, 2, 2, 58, 9],
    ];
    const expected: Int32Array[] = [];
    for (const p of prompts) {
      const seq = model.newSequence();
      const logits = await seq.forward(input(p, 0));
      const want = new Int32Array(p.length * k);
      for (let r = 0; r < p.length; r++) topIds(logits.subarray(r * VOCAB, (r + 1) * VOCAB), want, r * k, k);
      expected.push(want);
      seq.dispose();
    }
    // Alone: the best ids come with the argmax ids.
    for (const [i, p] of prompts.entries()) {
      const seq = model.newSequence();
      const ids = await seq.forwardIds(input(p, 0), true);
      const top = seq.topIds!();
      expect(Array.from(top)).toEqual(Array.from(expected[i]));
      for (let r = 0; r < p.length; r++) expect(top[r * k]).toBe(ids[r]);
      seq.dispose();
    }
    // Batched: each item's own.
    const seqs = prompts.map(() => model.newSequence());
    await model.forwardBatch(prompts.map((p, i) => ({ seq: seqs[i], input: input(p, 0), output: 'ids' as const, top: true })));
    for (const [i, seq] of seqs.entries()) expect(Array.from(seq.topIds!())).toEqual(Array.from(expected[i]));
    for (const seq of seqs) seq.dispose();
  });
});
