import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { ForwardInput, LoadedModel } from '../../src/model/types.js';

// ForwardInput.headFrom: a prompt chunk reads its last row only, so the LM head (a quarter of a chunk's work on a
// 150k vocabulary) runs on the rows asked for. Those rows must be the very numbers a forward of every row gives,
// alone and batched, and the K/V the forward leaves must not change.
const root = mkdtempSync(join(tmpdir(), 'head-rows-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const VOCAB = 384;

function input(tokens: number[], past: number, headFrom?: number): ForwardInput {
  return { tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => past + i), mask: null, ...(headFrom === undefined ? {} : { headFrom }) };
}

const prompts = [
  [3, 17, 99, 4, 250, 7, 7, 31, 5, 77],
  [300, 2, 2, 2, 58, 9],
  [11, 12, 13, 14, 15, 16, 17],
];

for (const dtype of ['fp32', 'q8'] as const) {
  describe(`head rows (${dtype})`, () => {
    let model: LoadedModel;
    /** Per prompt: every row's logits, ids and best ids, then the logits of one decode step after it. */
    const full: { logits: Float32Array; ids: Int32Array; top: Int32Array; next: Float32Array }[] = [];

    beforeAll(async () => {
      const dir = join(root, dtype);
      const source = new SyntheticSource(syntheticConfig({ hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: VOCAB, maxPositions: 128 }), 9);
      await buildModel(source, { dtype, attention: 'exact', layout: 'tree' }, dir);
      model = await openBuiltModel(dir, { threads: 1 });
      for (const p of prompts) {
        const seq = model.newSequence();
        const logits = (await seq.forward(input(p, 0))).slice();
        const other = model.newSequence();
        const ids = (await other.forwardIds(input(p, 0), true)).slice();
        const top = other.topIds!().slice();
        const next = (await seq.forward(input([42], p.length))).slice();
        full.push({ logits, ids, top, next });
        seq.dispose();
        other.dispose();
      }
    }, 120_000);
    afterAll(() => model?.dispose());

    it('alone: the rows from headFrom on, first at index 0, equal to the full forward bit for bit; the K/V as without it', async () => {
      const k = model.info.topIds!;
      for (const [i, p] of prompts.entries()) {
        for (const from of [p.length - 1, 3]) {
          const seq = model.newSequence();
          const logits = await seq.forward(input(p, 0, from));
          expect(logits.length).toBe((p.length - from) * VOCAB);
          expect(Array.from(logits)).toEqual(Array.from(full[i].logits.subarray(from * VOCAB)));
          // The next step sees the same past: its logits do not depend on how many rows the head computed.
          expect(Array.from(await seq.forward(input([42], p.length)))).toEqual(Array.from(full[i].next));
          seq.dispose();

          const ids = model.newSequence();
          expect(Array.from(await ids.forwardIds(input(p, 0, from), true))).toEqual(Array.from(full[i].ids.subarray(from)));
          expect(Array.from(ids.topIds!())).toEqual(Array.from(full[i].top.subarray(from * k)));
          ids.dispose();
        }
      }
    });

    it('batched: each item gets its own rows, whatever the others asked for', async () => {
      const k = model.info.topIds!;
      const froms = [prompts[0].length - 1, 0, 2];
      const seqs = prompts.map(() => model.newSequence());
      const outputs = ['logits', 'ids', 'ids'] as const;
      const results = await model.forwardBatch(prompts.map((p, i) => ({ seq: seqs[i], input: input(p, 0, froms[i]), output: outputs[i], top: outputs[i] === 'ids' })));
      expect(Array.from(results[0])).toEqual(Array.from(full[0].logits.subarray(froms[0] * VOCAB)));
      for (const i of [1, 2]) {
        expect(Array.from(results[i])).toEqual(Array.from(full[i].ids.subarray(froms[i])));
        expect(Array.from(seqs[i].topIds!())).toEqual(Array.from(full[i].top.subarray(froms[i] * k)));
      }
      for (const [i, seq] of seqs.entries()) {
        expect(Array.from(await seq.forward(input([42], prompts[i].length)))).toEqual(Array.from(full[i].next));
        seq.dispose();
      }
    });
  });
}
