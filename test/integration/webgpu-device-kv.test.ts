import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { treeBuildOptions } from '../../src/model/load.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import { offProvider, profilePlacement } from '../../src/model/runtime/placement.js';
import type { LoadedModel, Sequence } from '../../src/model/types.js';
import { webgpuUnavailable } from '../helpers/webgpu.js';

/**
 * The device path on the WebGPU EP (Mesa lavapipe in CI): K/V stays in device memory across steps, trimming a
 * verified draft happens on the device, and per step only ids/positions/bias go up and ids come down.
 */
const root = mkdtempSync(join(tmpdir(), 'webgpu-kv-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const config = syntheticConfig({ hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 128, maxPositions: 128 });
const src = new SyntheticSource(config, 11);

describe.skipIf(webgpuUnavailable !== null)('device-resident K/V on webgpu (synthetic model)', () => {
  let gpu: LoadedModel;
  let cpu: LoadedModel;
  let deviceDir: string;

  beforeAll(async () => {
    deviceDir = join(root, 'webgpu');
    await buildModel(src, treeBuildOptions('webgpu', 'fp32'), deviceDir);
    await buildModel(src, treeBuildOptions('cpu', 'fp32'), join(root, 'cpu'));
    gpu = await openBuiltModel(deviceDir, { executionProvider: 'webgpu' });
    cpu = await openBuiltModel(join(root, 'cpu'), { executionProvider: 'cpu' });
  });
  afterAll(async () => {
    await gpu?.dispose();
    await cpu?.dispose();
  });

  it('opens with the device placement', () => {
    expect(gpu.info.executionProvider).toBe('webgpu');
    expect(gpu.info.kvPlacement).toBe('device');
    expect(cpu.info.kvPlacement).toBe('host');
  });

  it('tree steps with non-prefix keeps: same ids as the CPU EP, K/V on the device after every step, no host K/V', async () => {
    const a = gpu.newSequence();
    const b = cpu.newSequence();
    const prompt = Int32Array.of(5, 9, 33, 71, 2, 18);
    const positions = Int32Array.from(prompt, (_, i) => i);
    const same = async (run: (s: Sequence) => Promise<Int32Array>) => {
      const [x, y] = [await run(a), await run(b)];
      expect([...x]).toEqual([...y]);
      return x;
    };
    let ids = await same((s) => s.forwardIds({ tokens: prompt, positions, mask: null }));
    let root = ids[ids.length - 1];
    for (let step = 0; step < 6; step++) {
      // Root, two siblings under it, a child under the second: keep root + the second sibling + its child.
      const past = a.length;
      const tokens = Int32Array.of(root, (root + 1) % 128, (root + 2) % 128, (root + 3) % 128);
      const parent = [-1, 0, 0, 2];
      const depth = [0, 1, 1, 2];
      const t = past + 4;
      const mask = new Float32Array(4 * t).fill(-Infinity);
      for (let i = 0; i < 4; i++) {
        mask.fill(0, i * t, i * t + past);
        for (let j = i; j >= 0; j = parent[j]) mask[i * t + past + j] = 0;
      }
      const pos = Int32Array.from(depth, (d) => past + d);
      const before = { ...a.transfers };
      ids = await same((s) => s.forwardIds({ tokens, positions: pos, mask }));
      const up = a.transfers.hostToDevice - before.hostToDevice;
      const down = a.transfers.deviceToHost - before.deviceToHost;
      // ids + positions (int64) + bias + rows to keep + logits_rows; 4 int64 ids and each row's top-k ids down
      // (the recycled-token source's), no logits.
      expect(up).toBe(2 * 8 * 4 + 4 * mask.length + 8 * past + 8);
      expect(gpu.info.topIds).toBeGreaterThan(0);
      expect(down).toBe(8 * 4 + 8 * 4 * gpu.info.topIds!);
      for (const s of [a, b]) s.keep(past, [past, past + 2, past + 3]);
      const r = a.residency();
      expect(r.locations).toHaveLength(2 * config.numLayers);
      expect(r.locations.every((l) => l === 'gpu-buffer')).toBe(true);
      expect(r.hostBytes).toBe(0);
      root = ids[3];
    }
    // A logits step agrees too, and only then do S × vocab floats come down.
    const before = a.transfers.deviceToHost;
    const x = await a.forward({ tokens: Int32Array.of(root), positions: Int32Array.of(a.length), mask: null });
    const y = await b.forward({ tokens: Int32Array.of(root), positions: Int32Array.of(b.length), mask: null });
    expect(a.transfers.deviceToHost - before).toBe(4 * config.vocabSize + 8 + 8 * gpu.info.topIds!);
    let maxDiff = 0;
    for (let i = 0; i < y.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
    expect(maxDiff).toBeLessThan(1e-3);
    // Truncation then a fresh forward: the kept rows are gathered on the device.
    a.truncate(3);
    b.truncate(3);
    await same((s) => s.forwardIds({ tokens: Int32Array.of(7, 8), positions: Int32Array.of(3, 4), mask: null }));
    a.dispose();
    b.dispose();
  });

  it('places every op of the built graph on the WebGPU EP (ORT profile)', async () => {
    const placement = await profilePlacement(deviceDir, 'webgpu');
    const fallbacks = offProvider(placement, 'WebGpuExecutionProvider');
    console.log(`webgpu placement: ${Object.keys(placement).length} op types; off the WebGPU EP: ${fallbacks.join(', ') || 'none'}`);
    for (const op of ['MatMul', 'Gemm', 'Softmax', 'SimplifiedLayerNormalization', 'RotaryEmbedding', 'ArgMax', 'Gather', 'Concat']) {
      expect(Object.keys(placement[op] ?? {}), op).toEqual(['WebGpuExecutionProvider']);
    }
    expect(fallbacks).toEqual([]);
  });
});
