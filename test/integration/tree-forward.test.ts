import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import type { AttentionKind } from '../../src/model/builder/options.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { LlamaConfig, LoadedModel, RopeStyle, Sequence } from '../../src/model/types.js';
import { FAMILIES } from '../helpers/families.js';
import { maxAbsDiff } from '../unit/builder-reference.js';

const V = 128;
const root = mkdtempSync(join(tmpdir(), 'tree-forward-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

interface Tree {
  tokens: number[];
  parent: number[];
}

/** A random draft tree: node 0 is the root; every other node's parent comes earlier. */
function randomTree(rand: () => number, size: number, shape: 'chain' | 'wide' | 'random'): Tree {
  const tokens = [];
  const parent = [];
  for (let i = 0; i < size; i++) {
    tokens.push(Math.floor(rand() * V));
    if (i === 0) parent.push(-1);
    else if (shape === 'chain') parent.push(i - 1);
    else if (shape === 'wide') parent.push(0);
    else parent.push(Math.floor(rand() * i));
  }
  return { tokens, parent };
}

function pathTo(tree: Tree, node: number): number[] {
  const path = [];
  for (let n = node; n >= 0; n = tree.parent[n]) path.unshift(n);
  return path;
}

/** Additive tree mask [S, past + S]: every past row, plus the node's ancestors and itself. */
function treeMask(tree: Tree, past: number): { mask: Float32Array; positions: Int32Array } {
  const s = tree.tokens.length;
  const t = past + s;
  const mask = new Float32Array(s * t).fill(-Infinity);
  const positions = new Int32Array(s);
  for (let i = 0; i < s; i++) {
    mask.fill(0, i * t, i * t + past);
    const path = pathTo(tree, i);
    for (const a of path) mask[i * t + past + a] = 0;
    positions[i] = past + path.length - 1;
  }
  return { mask, positions };
}

async function causal(seq: Sequence, tokens: number[]): Promise<Float32Array> {
  const start = seq.length;
  return seq.forward({ tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => start + i), mask: null });
}

const models: [AttentionKind, RopeStyle][] = [
  ['exact', 'half'],
  ['exact', 'interleaved'],
  ['onnx', 'half'],
  ['onnx', 'interleaved'],
  ['mha', 'half'],
  ['gqa', 'interleaved'],
];

const cases: [number, number, 'chain' | 'wide' | 'random'][] = [
  [0, 6, 'random'],
  [1, 5, 'chain'],
  [37, 8, 'wide'],
  [200, 12, 'random'],
];

/** Every node's logits equal a causal forward of its path; after keep(), decoding continues as if only the path had been fed. */
async function checkTree(model: LoadedModel, past: number, size: number, shape: 'chain' | 'wide' | 'random'): Promise<void> {
  const rand = lcg(past * 31 + size);
  const prefix = Array.from({ length: past }, () => Math.floor(rand() * V));
  const tree = randomTree(rand, size, shape);
  const seq = model.newSequence();
  const ref = model.newSequence();
  if (past) {
    await causal(seq, prefix);
    await causal(ref, prefix);
  }
  const { mask, positions } = treeMask(tree, past);
  const logits = (await seq.forward({ tokens: Int32Array.from(tree.tokens), positions, mask })).slice();

  const vocab = model.info.vocabSize;
  for (let node = 0; node < size; node++) {
    ref.truncate(past);
    const pathLogits = await causal(ref, pathTo(tree, node).map((n) => tree.tokens[n]));
    const last = pathLogits.subarray(pathLogits.length - vocab);
    expect(maxAbsDiff(logits.subarray(node * vocab, (node + 1) * vocab), last), `node ${node}`).toBeLessThanOrEqual(1e-4);
  }

  const accepted = pathTo(tree, size - 1);
  seq.keep(past, accepted.map((n) => past + n));
  expect(seq.length).toBe(past + accepted.length);
  ref.truncate(past);
  await causal(ref, accepted.map((n) => tree.tokens[n]));
  const next = [5, 9];
  const a = await causal(seq, next);
  const b = await causal(ref, next);
  expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-4);
  seq.dispose();
  ref.dispose();
}

async function buildSynthetic(config: LlamaConfig, attention: AttentionKind, name: string): Promise<LoadedModel> {
  const dir = join(root, name);
  await buildModel(new SyntheticSource(config, 3), { dtype: 'fp32', attention, layout: 'tree' }, dir);
  return openBuiltModel(dir);
}

describe.each(models)('tree forward (attention %s, rope %s)', (attention, ropeStyle) => {
  let model: LoadedModel;
  beforeAll(async () => {
    const config = syntheticConfig({ hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: V, ropeStyle });
    model = await buildSynthetic(config, attention, `${attention}-${ropeStyle}`);
  });
  afterAll(() => model.dispose());
  it.each(cases)('past %i, %i nodes, %s tree', (past, size, shape) => checkTree(model, past, size, shape));
});

// Each family's details (sliding windows past 37 and 200 tokens, NoPE layers, partial/scaled RoPE, q/k norms...)
// must leave tree verification exact. GQA attention takes the window through its bias too.
const familyRuns: [string, AttentionKind][] = [...FAMILIES.map((f): [string, AttentionKind] => [f.name, 'exact']), ['gemma3', 'gqa']];

describe.each(familyRuns)('tree forward, %s family (attention %s)', (name, attention) => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await buildSynthetic(FAMILIES.find((f) => f.name === name)!.config, attention, `${name}-${attention}`);
  });
  afterAll(() => model.dispose());
  it.each(cases)('past %i, %i nodes, %s tree', (past, size, shape) => checkTree(model, past, size, shape));
});
