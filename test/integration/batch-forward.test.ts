import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../src/errors.js';
import { writeTreeMask, writeTreePositions } from '../../src/lookahead/mask.js';
import { buildModel, LONE_FILE } from '../../src/model/builder/build.js';
import type { WeightDType } from '../../src/model/builder/options.js';
import type { WeightSource } from '../../src/model/builder/source.js';
import { openHfDir } from '../../src/model/builder/sources/hf-dir.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { BatchItem, ForwardInput, LoadedModel, Sequence } from '../../src/model/types.js';
import { FAMILIES } from '../helpers/families.js';
import { SHARED_DATA } from '../helpers/paths.js';

// A job's output must not depend on what it was batched with: every item of a forwardBatch must return what its
// sequence alone returns, bit for bit, and leave the same K/V behind. Each sequence here has a twin fed the same
// steps one forward at a time; the two are compared after every step, across joins, leaves, keeps and disposes.
const root = mkdtempSync(join(tmpdir(), 'batch-forward-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

type Kind = 'single' | 'chain' | 'tree' | 'prefill';

/** A step's input as the engine writes it, and the draft's parents (a chain's are i - 1). */
function stepInput(rand: () => number, vocab: number, past: number, kind: Kind, size: number): { input: ForwardInput; parent: Int32Array } {
  const tokens = Int32Array.from({ length: size }, () => Math.floor(rand() * vocab));
  const parent = Int32Array.from({ length: size }, (_, i) => (i === 0 ? -1 : kind === 'tree' ? Math.floor(rand() * i) : i - 1));
  const depth = new Int32Array(size);
  for (let i = 1; i < size; i++) depth[i] = depth[parent[i]] + 1;
  const positions = new Int32Array(size);
  const draft = { size, tokens, parent, depth };
  writeTreePositions(draft, past, positions);
  if (kind !== 'tree') return { input: { tokens, positions, mask: null }, parent };
  const mask = new Float32Array(size * (past + size));
  writeTreeMask(draft, past, mask);
  return { input: { tokens, positions, mask }, parent };
}

/** Nodes from the root to `node`. */
function pathTo(parent: Int32Array, node: number): number[] {
  const path = [];
  for (let n = node; n >= 0; n = parent[n]) path.unshift(n);
  return path;
}

const bits = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

interface Pair {
  seq: Sequence;
  twin: Sequence;
}

async function prefill(model: LoadedModel, pair: Pair, rand: () => number, length: number): Promise<void> {
  for (let at = 0; at < length; at += 128) {
    const n = Math.min(128, length - at);
    const { input } = stepInput(rand, model.info.vocabSize, at, 'prefill', n);
    await pair.seq.forwardIds(input);
    await pair.twin.forwardIds(input);
  }
}

/**
 * One batched step: pairs[i] runs `kinds[i]` (sizes as the engine sends them), every other item asks for logits.
 * Each result is compared with the twin's forward alone; then both keep the same random path of the draft.
 */
async function batchedStep(model: LoadedModel, pairs: Pair[], kinds: Kind[], rand: () => number): Promise<void> {
  const size: Record<Kind, () => number> = { single: () => 1, chain: () => 2 + Math.floor(rand() * 7), tree: () => 2 + Math.floor(rand() * 15), prefill: () => 17 + Math.floor(rand() * 30) };
  const steps = pairs.map((p, i) => ({ ...stepInput(rand, model.info.vocabSize, p.seq.length, kinds[i], size[kinds[i]]()), past: p.seq.length }));
  const items: BatchItem[] = pairs.map((p, i) => ({ seq: p.seq, input: steps[i].input, output: i % 2 ? 'logits' : 'ids' }));
  const results = await model.forwardBatch(items);
  for (let i = 0; i < pairs.length; i++) {
    const { twin, seq } = pairs[i];
    const alone = items[i].output === 'ids' ? await twin.forwardIds(steps[i].input) : await twin.forward(steps[i].input);
    expect(results[i].constructor, `item ${i}`).toBe(alone.constructor);
    expect(bits(results[i]).equals(bits(alone)), `item ${i} (${kinds[i]}, past ${steps[i].past}) differs from its sequence alone`).toBe(true);
    expect(seq.length).toBe(twin.length);
  }
  for (let i = 0; i < pairs.length; i++) {
    const { parent, past } = steps[i];
    if (kinds[i] === 'prefill' || kinds[i] === 'single') continue;
    const path = pathTo(parent, Math.floor(rand() * parent.length)).map((n) => past + n);
    for (const s of [pairs[i].seq, pairs[i].twin]) s.keep(past, path);
  }
}

interface Case {
  skip?: boolean;
  pasts?: number[];
  threads?: number;
  /** Without the lone graph, a sequence alone runs through the batched graph's lone branch. */
  lone?: boolean;
}

function describeModel(name: string, source: () => WeightSource, dtype: WeightDType, { skip = false, pasts = [0, 3, 64, 129, 300], threads, lone = true }: Case = {}): void {
  const title = `${name}, ${dtype}${threads ? `, ${threads} threads` : ''}${lone ? '' : ', no lone graph'}`;
  describe.skipIf(skip)(`forwardBatch equals each sequence alone (${title})`, () => {
    let model: LoadedModel;
    beforeAll(async () => {
      const dir = join(root, title.replace(/[^a-z0-9]+/gi, '-'));
      await buildModel(source(), { dtype, attention: 'exact', layout: 'tree' }, dir);
      // Small models get the lone graph, so a twin's forwards run through it and a batch's through the batched one.
      expect(existsSync(join(dir, LONE_FILE))).toBe(true);
      if (!lone) rmSync(join(dir, LONE_FILE));
      model = await openBuiltModel(dir, { threads });
    });
    afterAll(() => model?.dispose());

    it(`singles, chains, trees and prefill chunks over pasts of ${pasts.join(', ')}; joins, leaves, keeps and disposes between steps`, async () => {
      expect(model.info.maxBatch).toBeGreaterThanOrEqual(8);
      const rand = lcg(name.length * 97 + dtype.length);
      const pairs: Pair[] = [];
      for (const past of pasts) {
        const pair = { seq: model.newSequence(), twin: model.newSequence() };
        await prefill(model, pair, rand, past);
        pairs.push(pair);
      }
      await batchedStep(model, pairs, ['prefill', 'single', 'chain', 'tree', 'tree'], rand);
      await batchedStep(model, pairs, ['tree', 'tree', 'single', 'chain', 'single'], rand);
      // The first leaves; a new sequence joins with its prompt's first chunk.
      const joined = { seq: model.newSequence(), twin: model.newSequence() };
      await batchedStep(model, [...pairs.slice(1), joined], ['tree', 'chain', 'tree', 'single', 'prefill'], rand);
      // Alone between batched steps, then back in a batch with the one that sat out.
      await batchedStep(model, [pairs[2]], ['tree'], rand);
      pairs[1].seq.dispose();
      pairs[1].twin.dispose();
      const rest = [pairs[0], ...pairs.slice(2), joined];
      for (let step = 0; step < 3; step++) {
        await batchedStep(model, rest, rest.map((_, i) => (['single', 'tree', 'chain'] as Kind[])[(i + step) % 3]), rand);
      }
      // A fresh sequence reuses the disposed one's rows.
      const late = { seq: model.newSequence(), twin: model.newSequence() };
      await prefill(model, late, rand, 40);
      await batchedStep(model, [late, ...rest], ['tree', ...rest.map((): Kind => 'tree')], rand);
      for (const p of [...rest, late]) {
        p.seq.dispose();
        p.twin.dispose();
      }
    });

    it('forwards started together on several sequences take turns and each equals its sequence alone', async () => {
      const rand = lcg(7);
      const pairs = Array.from({ length: 3 }, () => ({ seq: model.newSequence(), twin: model.newSequence() }));
      const steps = pairs.map((_, i) => stepInput(rand, model.info.vocabSize, 0, i === 1 ? 'tree' : 'chain', 5 + i).input);
      const together = await Promise.all(pairs.map((p, i) => (i % 2 ? p.seq.forward(steps[i]) : p.seq.forwardIds(steps[i]))));
      for (let i = 0; i < pairs.length; i++) {
        const alone = i % 2 ? await pairs[i].twin.forward(steps[i]) : await pairs[i].twin.forwardIds(steps[i]);
        expect(bits(together[i]).equals(bits(alone)), `sequence ${i}`).toBe(true);
      }
      for (const p of pairs) {
        p.seq.dispose();
        p.twin.dispose();
      }
    });

    it('a fork holds the first rows of its source: its forwards equal those of a sequence prefilled with the same tokens', async () => {
      const rand = lcg(name.length * 31 + 5);
      // Long enough to cross MLAS's key blocks on the models here, within their context.
      const past = Math.min(300, model.info.contextLength - 32);
      const source = model.newSequence();
      const twin = model.newSequence();
      // The source's rows came in one cut (a prompt's chunks, then a decoded step), the twin's in another.
      const tokens = Int32Array.from({ length: past + 8 }, () => Math.floor(rand() * model.info.vocabSize));
      const positions = Int32Array.from(tokens, (_, i) => i);
      await source.forwardIds({ tokens: tokens.subarray(0, past), positions: positions.subarray(0, past), mask: null });
      await source.forwardIds({ tokens: tokens.subarray(past), positions: positions.subarray(past), mask: null });
      for (let at = 0; at < past - 3; at += 64) {
        const end = Math.min(at + 64, past - 3);
        await twin.forwardIds({ tokens: tokens.subarray(at, end), positions: positions.subarray(at, end), mask: null });
      }
      const fork = source.fork!(past - 3);
      // Kept only to fork from: its logits buffers go, and it no longer forwards.
      source.settle!();
      await expect(source.forwardIds({ tokens: Int32Array.of(1), positions: Int32Array.of(source.length), mask: null })).rejects.toThrow(/settled/);
      expect(fork.length).toBe(past - 3);
      const { input } = stepInput(rand, model.info.vocabSize, past - 3, 'tree', 9);
      const [a, b] = await Promise.all([fork.forward(input), twin.forward(input)]);
      expect(bits(a).equals(bits(b)), 'a tree step on the fork and on the twin').toBe(true);
      // The fork's rows are its own: the source going away leaves them. Both keep the tree's root and decode on.
      source.dispose();
      for (const s of [fork, twin]) s.keep(past - 3, [past - 3]);
      const next = { tokens: Int32Array.of(3), positions: Int32Array.of(past - 2), mask: null };
      expect(bits(await fork.forwardIds(next)).equals(bits(await twin.forwardIds(next)))).toBe(true);
      fork.dispose();
      twin.dispose();
    });

    it('refuses a sequence twice in one batch, more than maxBatch sequences, and a disposed sequence', async () => {
      const seq = model.newSequence();
      const input = { tokens: Int32Array.of(1), positions: Int32Array.of(0), mask: null };
      await expect(model.forwardBatch([{ seq, input, output: 'ids' }, { seq, input, output: 'ids' }])).rejects.toThrow(InvalidRequestError);
      const many = Array.from({ length: model.info.maxBatch + 1 }, () => model.newSequence());
      await expect(model.forwardBatch(many.map((s) => ({ seq: s, input, output: 'ids' })))).rejects.toThrow(/at most/);
      seq.dispose();
      await expect(model.forwardBatch([{ seq, input, output: 'ids' }])).rejects.toThrow(/disposed/);
      for (const s of many) s.dispose();
      expect(await model.forwardBatch([])).toEqual([]);
    });
  });
}

const synthetic = () => new SyntheticSource(syntheticConfig({ hiddenSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 256, maxPositions: 512 }), 11);
for (const dtype of ['fp32', 'fp16', 'q8', 'q4'] as WeightDType[]) describeModel('synthetic', synthetic, dtype);
for (const dtype of ['fp32', 'q8'] as WeightDType[]) describeModel('synthetic', synthetic, dtype, { lone: false });
// Head size 64: MLAS sums e·V over keys in blocks of 256, so these batches put keys on both sides of block
// boundaries that their sequences alone do not cross; each key must still sit at its alone index.
const wideHeads = () => new SyntheticSource(syntheticConfig({ hiddenSize: 128, numLayers: 2, numHeads: 2, numKvHeads: 2, vocabSize: 256, maxPositions: 1024 }), 12);
describeModel('synthetic-hd64', wideHeads, 'q8', { pasts: [0, 200, 236, 250, 600] });
// One kv head: alone, attention is a single GEMM per step, which MLAS splits across threads by columns (and then
// blocks its sums otherwise); in a batch it is not split. The V column slices keep both the same.
const mqa = () => new SyntheticSource(syntheticConfig({ hiddenSize: 128, numLayers: 2, numHeads: 2, numKvHeads: 1, vocabSize: 256, maxPositions: 1024 }), 13);
describeModel('synthetic-mqa-hd64', mqa, 'q8', { pasts: [0, 200, 236, 250, 600] });
describeModel('synthetic-mqa-hd64', mqa, 'fp32', { pasts: [0, 500, 700, 250, 900] });
// More threads than kv heads: the same split happens with two kv heads.
describeModel('synthetic-hd64', wideHeads, 'fp32', { pasts: [0, 200, 236, 250, 600], threads: 4 });
// Sliding windows (crossed by the pasts above) with one kv head, and Gemma 3's local/global layers.
for (const family of FAMILIES.filter((f) => f.config.slidingWindow !== undefined)) describeModel(family.name, () => new SyntheticSource(family.config, 3), 'q8');

const CHAT = join(SHARED_DATA, 'models/chat-llama-5m');
if (!existsSync(CHAT)) console.warn(`skipping the chat-llama-5m batch tests: ${CHAT} is absent`);
describeModel('chat-llama-5m', () => openHfDir(CHAT), 'fp32', { skip: !existsSync(CHAT) });
