import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import type { WeightDType } from '../../src/model/builder/options.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { LoadedModel, Sequence } from '../../src/model/types.js';
import { FAMILIES } from '../helpers/families.js';

// Lookahead is lossless only if a row's logits do not depend on the other rows of its forward: a verified draft
// token must see exactly the logits (and leave exactly the K/V) that plain one-token-at-a-time decoding would.
// So each row of an S-token forward (causal chain or draft tree) is compared bit for bit with its path fed one
// token per forward.
const V = 256;
const root = mkdtempSync(join(tmpdir(), 'row-independence-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Parent of each node of a random tree (node 0 is the root); a chain when `chain`. */
function randomParents(rand: () => number, size: number, chain: boolean): number[] {
  return Array.from({ length: size }, (_, i) => (i === 0 ? -1 : chain ? i - 1 : Math.floor(rand() * i)));
}

function pathTo(parent: number[], node: number): number[] {
  const path = [];
  for (let n = node; n >= 0; n = parent[n]) path.unshift(n);
  return path;
}

async function oneByOne(seq: Sequence, tokens: number[]): Promise<Float32Array> {
  let last = new Float32Array(0);
  for (const t of tokens) {
    const p = seq.length;
    last = (await seq.forward({ tokens: Int32Array.of(t), positions: Int32Array.of(p), mask: null })).slice();
  }
  return last;
}

/** The prefix in forwards of up to 512 tokens (a past too long to feed one token at a time in a test). */
async function inChunks(seq: Sequence, tokens: number[]): Promise<void> {
  for (let at = 0; at < tokens.length; at += 512) {
    const chunk = tokens.slice(at, at + 512);
    await seq.forward({ tokens: Int32Array.from(chunk), positions: Int32Array.from(chunk, (_, i) => at + i), mask: null });
  }
}

/** Rows of an S-token forward whose logits differ in any bit from the same row computed alone. */
async function differingRows(model: LoadedModel, past: number, size: number, chain: boolean, prefill: (seq: Sequence, tokens: number[]) => Promise<unknown> = oneByOne): Promise<number> {
  const rand = lcg(past * 131 + size * 7 + (chain ? 1 : 0));
  const vocab = model.info.vocabSize;
  const prefix = Array.from({ length: past }, () => Math.floor(rand() * vocab));
  const tokens = Array.from({ length: size }, () => Math.floor(rand() * vocab));
  const parent = randomParents(rand, size, chain);
  const seq = model.newSequence();
  const ref = model.newSequence();
  await prefill(seq, prefix);
  await prefill(ref, prefix);
  const t = past + size;
  const mask = new Float32Array(size * t).fill(-Infinity);
  const positions = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    mask.fill(0, i * t, i * t + past);
    const path = pathTo(parent, i);
    for (const a of path) mask[i * t + past + a] = 0;
    positions[i] = past + path.length - 1;
  }
  const logits = (await seq.forward({ tokens: Int32Array.from(tokens), positions, mask })).slice();
  let differing = 0;
  for (let node = 0; node < size; node++) {
    ref.truncate(past);
    const alone = await oneByOne(ref, pathTo(parent, node).map((n) => tokens[n]));
    const row = logits.subarray(node * vocab, (node + 1) * vocab);
    if (row.some((x, j) => x !== alone[j])) differing++;
  }
  seq.dispose();
  ref.dispose();
  return differing;
}

describe.each(['fp32', 'fp16', 'q8', 'q4'] as WeightDType[])('rows are independent of their forward (%s)', (dtype) => {
  let model: LoadedModel;
  beforeAll(async () => {
    const config = syntheticConfig({ hiddenSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: V });
    const dir = join(root, dtype);
    await buildModel(new SyntheticSource(config, 5), { dtype, attention: 'exact', layout: 'tree' }, dir);
    model = await openBuiltModel(dir);
  });
  afterAll(() => model.dispose());

  it.each([2, 3, 4, 5, 8, 12, 16])('S = %i: chain and tree rows equal the row alone, bit for bit', async (size) => {
    // Past 120 puts the larger trees across a 128-key boundary, where kernels block their sums.
    for (const past of [0, 9, 70, 120]) {
      for (const chain of [true, false]) expect(await differingRows(model, past, size, chain), `${chain ? 'chain' : 'tree'} past ${past}`).toBe(0);
    }
  });
});

// Past 1024 rows, a lone sequence's attention reads whole blocks of 1024 old keys in place and only the rest through a
// copy (attention.ts oldPastRows): rows must not change with that, and a window must still apply to the old rows.
describe('rows are independent of their forward past 1024 keys', () => {
  const dtype = 'fp32';
  const models: LoadedModel[] = [];
  beforeAll(async () => {
    const configs = [
      syntheticConfig({ hiddenSize: 64, numLayers: 1, numHeads: 4, numKvHeads: 2, vocabSize: V, maxPositions: 4096 }),
      syntheticConfig({ hiddenSize: 64, numLayers: 1, numHeads: 4, numKvHeads: 1, vocabSize: V, maxPositions: 4096, slidingWindow: 1500 }),
    ];
    for (const [i, config] of configs.entries()) {
      const dir = join(root, `long-${dtype}-${i}`);
      await buildModel(new SyntheticSource(config, 5), { dtype, attention: 'exact', layout: 'tree' }, dir);
      models.push(await openBuiltModel(dir));
    }
  });
  afterAll(async () => {
    for (const m of models) await m.dispose();
  });

  it.each([8])('S = %i: chain and tree rows equal the row alone, bit for bit', async (size) => {
    for (const [i, model] of models.entries()) {
      for (const past of [1100, 2100]) {
        for (const chain of [true, false]) expect(await differingRows(model, past, size, chain, inChunks), `model ${i} ${chain ? 'chain' : 'tree'} past ${past}`).toBe(0);
      }
    }
  });

  it('reading old keys in place gives what the copy gives: slot 0 of a batch (in place) equals slot 1 (copied), bit for bit', async () => {
    const model = models[0];
    const prefix = Array.from({ length: 2100 }, (_, i) => (i * 31) % V);
    const [alone, second, other] = [model.newSequence(), model.newSequence(), model.newSequence()];
    for (const seq of [alone, second]) await inChunks(seq, prefix);
    const input = { tokens: Int32Array.of(5, 6, 7), positions: Int32Array.of(2100, 2101, 2102), mask: null };
    const a = (await alone.forward(input)).slice();
    const [, b] = await model.forwardBatch([
      { seq: other, input: { tokens: Int32Array.of(9), positions: Int32Array.of(0), mask: null }, output: 'logits' },
      { seq: second, input, output: 'logits' },
    ]);
    expect(b).toEqual(a);
    for (const seq of [alone, second, other]) seq.dispose();
  });
});

// Sliding windows (crossed by past 30 and 70), one kv head for four query heads, head sizes that are not
// hidden/heads, q/k norms, attention scale and logit soft-capping, on the quantized path.
describe.each(FAMILIES.map((f) => f.name))('rows are independent of their forward (%s family, q8)', (name) => {
  let model: LoadedModel;
  beforeAll(async () => {
    const dir = join(root, `family-${name}`);
    await buildModel(new SyntheticSource(FAMILIES.find((f) => f.name === name)!.config, 5), { dtype: 'q8', attention: 'exact', layout: 'tree' }, dir);
    model = await openBuiltModel(dir);
  });
  afterAll(() => model.dispose());

  it.each([3, 8, 16])('S = %i: chain and tree rows equal the row alone, bit for bit', async (size) => {
    for (const past of [0, 30, 70]) {
      for (const chain of [true, false]) expect(await differingRows(model, past, size, chain), `${chain ? 'chain' : 'tree'} past ${past}`).toBe(0);
    }
  });
});
