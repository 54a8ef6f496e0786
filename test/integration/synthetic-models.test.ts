import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ContextLengthError } from '../../src/errors.js';
import { buildModel, DATA_FILE, MODEL_FILE } from '../../src/model/builder/build.js';
import { ensureBuilt } from '../../src/model/builder/cache.js';
import type { BuildOptions } from '../../src/model/builder/options.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import { isForeignExport, openForeignModel } from '../../src/model/runtime/foreign-model.js';
import { measureForwardCost } from '../../src/model/runtime/forward-cost.js';
import { maxAbsDiff } from '../unit/builder-reference.js';

const root = mkdtempSync(join(tmpdir(), 'synthetic-models-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const V = 512;
const source = new SyntheticSource(syntheticConfig({ hiddenSize: 128, numLayers: 3, numHeads: 4, numKvHeads: 2, vocabSize: V, maxPositions: 256 }), 11);
const tokens = Int32Array.from({ length: 48 }, (_, i) => (i * 37 + 5) % V);
const positions = Int32Array.from(tokens, (_, i) => i);

async function logitsFor(options: Partial<BuildOptions>, name: string): Promise<Float32Array> {
  const dir = join(root, name);
  await buildModel(source, { dtype: 'fp32', attention: 'onnx', layout: 'tree', ...options }, dir);
  const model = await openBuiltModel(dir);
  const seq = model.newSequence();
  const a = await seq.forward({ tokens: tokens.subarray(0, 40), positions: positions.subarray(0, 40), mask: null });
  const b = await seq.forward({ tokens: tokens.subarray(40), positions: positions.subarray(40), mask: null });
  await model.dispose();
  return new Float32Array([...a, ...b]);
}

function argmaxAgreement(a: Float32Array, b: Float32Array): number {
  let same = 0;
  const rows = a.length / V;
  for (let r = 0; r < rows; r++) {
    const row = (x: Float32Array) => x.subarray(r * V, (r + 1) * V);
    const am = (x: Float32Array) => x.indexOf(Math.max(...x));
    if (am(row(a)) === am(row(b))) same++;
  }
  return same / rows;
}

describe('synthetic builds', () => {
  let fp32: Float32Array;

  it('every attention op gives the same logits', async () => {
    fp32 = await logitsFor({ attention: 'onnx' }, 'onnx');
    for (const attention of ['exact', 'mha', 'gqa'] as const) {
      expect(maxAbsDiff(await logitsFor({ attention }, attention), fp32), attention).toBeLessThanOrEqual(1e-4);
    }
  });

  it('external data gives the same logits as inline weights', async () => {
    const ext = await logitsFor({ externalData: true }, 'external');
    expect(existsSync(join(root, 'external', DATA_FILE))).toBe(true);
    expect(statSync(join(root, 'external', MODEL_FILE)).size).toBeLessThan(64 * 1024);
    expect(maxAbsDiff(ext, fp32)).toBe(0);
  });

  it.each([
    ['fp16', 0.95],
    ['q8', 0.9],
    // Random Gaussian weights are the worst case for 4-bit blocks (about 25% relative logit error here).
    ['q4', 0.3],
  ] as const)('%s agrees with fp32 on most argmaxes', async (dtype, minRate) => {
    const rate = argmaxAgreement(await logitsFor({ dtype }, dtype), fp32);
    console.log(`${dtype}: argmax agreement with fp32 ${(rate * 100).toFixed(1)}% of ${tokens.length} rows`);
    expect(rate).toBeGreaterThanOrEqual(minRate);
  });
});

describe('standard (HF Optimum) layout', () => {
  it('loads as a foreign export and matches the tree-layout graph', async () => {
    const dir = join(root, 'standard');
    await buildModel(source, { dtype: 'fp32', attention: 'onnx', layout: 'standard' }, dir);
    expect(existsSync(join(dir, 'config.json'))).toBe(true);
    expect(await isForeignExport(join(dir, MODEL_FILE))).toBe(true);
    const model = await openForeignModel(dir);
    expect(model.info.treeMask).toBe(false);
    expect(model.info.vocabSize).toBe(V);
    const seq = model.newSequence();
    const a = await seq.forward({ tokens: tokens.subarray(0, 40), positions: positions.subarray(0, 40), mask: null });
    const b = await seq.forward({ tokens: tokens.subarray(40), positions: positions.subarray(40), mask: null });
    const tree = await logitsFor({}, 'tree-for-standard');
    expect(maxAbsDiff(new Float32Array([...a, ...b]), tree)).toBeLessThanOrEqual(1e-4);
    await model.dispose();
  });
});

describe('build cache', () => {
  it('builds once, then reuses the directory', async () => {
    const cacheDir = join(root, 'cache');
    const logs: string[] = [];
    const options: BuildOptions = { dtype: 'fp32', attention: 'onnx', layout: 'tree' };
    const dir = await ensureBuilt(source, options, cacheDir, (m) => logs.push(m));
    const mtime = statSync(join(dir, MODEL_FILE)).mtimeMs;
    expect(logs.length).toBeGreaterThan(0);
    logs.length = 0;
    expect(await ensureBuilt(source, options, cacheDir, (m) => logs.push(m))).toBe(dir);
    expect(logs).toEqual([]);
    expect(statSync(join(dir, MODEL_FILE)).mtimeMs).toBe(mtime);
    const other = await ensureBuilt(source, { ...options, attention: 'mha' }, cacheDir, () => {});
    expect(other).not.toBe(dir);
  });
});

describe('runtime', () => {
  it('throws ContextLengthError past the context length, and keeps the cache usable', async () => {
    const dir = join(root, 'onnx');
    const model = await openBuiltModel(dir, { contextLength: 50 });
    expect(model.info.contextLength).toBe(50);
    const seq = model.newSequence();
    await seq.forward({ tokens: tokens.subarray(0, 40), positions: positions.subarray(0, 40), mask: null });
    await expect(seq.forward({ tokens: tokens.subarray(0, 11), positions: Int32Array.from({ length: 11 }, (_, i) => 40 + i), mask: null })).rejects.toBeInstanceOf(ContextLengthError);
    expect(seq.length).toBe(40);
    const logits = await seq.forward({ tokens: tokens.subarray(40, 48), positions: positions.subarray(40, 48), mask: null });
    expect(logits.length).toBe(8 * V);
    await model.dispose();
  });

  it('fails to open on an execution provider that cannot start, saying why (never a silent CPU run)', async () => {
    // The CUDA EP's libraries are downloaded at install time, which these machines skip.
    await expect(openBuiltModel(join(root, 'onnx'), { executionProvider: 'cuda' })).rejects.toThrow(/execution provider cuda is not available.*CUDA/);
  });

  it('grows the KV cache past its initial capacity without changing results', async () => {
    const big = new SyntheticSource(syntheticConfig({ hiddenSize: 32, numLayers: 1, numHeads: 2, vocabSize: 64, maxPositions: 1024 }), 2);
    const dir = join(root, 'grow');
    await buildModel(big, { dtype: 'fp32', attention: 'onnx', layout: 'tree' }, dir);
    const model = await openBuiltModel(dir);
    const ids = Int32Array.from({ length: 600 }, (_, i) => (i * 13) % 64);
    const pos = Int32Array.from(ids, (_, i) => i);
    const one = model.newSequence();
    const whole = await one.forward({ tokens: ids, positions: pos, mask: null });
    const steps = model.newSequence();
    let last: Float32Array = new Float32Array(0);
    for (let at = 0; at < 600; at += 100) last = await steps.forward({ tokens: ids.subarray(at, at + 100), positions: pos.subarray(at, at + 100), mask: null });
    expect(maxAbsDiff(last, whole.subarray(500 * 64))).toBeLessThanOrEqual(1e-4);
    await model.dispose();
  });

  it('measures forward cost per k', async () => {
    const model = await openBuiltModel(join(root, 'onnx'));
    const cost = await measureForwardCost(model, [1, 4], 32, 2);
    expect(cost.map((c) => c.k)).toEqual([1, 4]);
    for (const c of cost) expect(c.ms).toBeGreaterThan(0);
    await model.dispose();
  });
});
