import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import { PREFILL_CHUNK, promptAgreement, treeAgreement } from '../../src/model/runtime/ep-agreement.js';
import type { LoadedModel } from '../../src/model/types.js';

/**
 * The sweep the WebGPU tests and `bench device-check` judge an EP by, on the CPU EP: a graph agrees with itself at
 * every size, and other weights are caught at every size (so a passing sweep means something).
 */
const root = mkdtempSync(join(tmpdir(), 'ep-agreement-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const config = syntheticConfig({ hiddenSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, vocabSize: 64, maxPositions: 256 });

describe('ep-agreement sweep (cpu)', () => {
  let a: LoadedModel;
  let same: LoadedModel;
  let other: LoadedModel;

  beforeAll(async () => {
    const open = async (seed: number, name: string) => {
      await buildModel(new SyntheticSource(config, seed), { dtype: 'fp32', attention: 'exact', layout: 'tree' }, join(root, name));
      return openBuiltModel(join(root, name), { threads: 1 });
    };
    [a, same, other] = [await open(1, 'a'), await open(1, 'same'), await open(2, 'other')];
  });
  afterAll(async () => {
    for (const m of [a, same, other]) await m?.dispose();
  });

  it('prompts: lengths within the context, one forward and chunks past PREFILL_CHUNK; zero against the same weights', async () => {
    const rows = await promptAgreement(a, same, [1, 32, 200, 512]);
    expect(rows.map((r) => [r.length, r.chunk])).toEqual([[1, null], [32, null], [200, null], [200, PREFILL_CHUNK]]);
    for (const r of rows) expect(r).toMatchObject({ maxLogprobDelta: 0, top1Equal: true });
  });

  it('prompts and trees: other weights are caught', async () => {
    for (const r of await promptAgreement(a, other, [16, 200])) expect(r.maxLogprobDelta).toBeGreaterThan(1e-2);
    const trees = await treeAgreement(a, other, [16], [0, 100, 1000]);
    expect(trees.map((r) => r.past)).toEqual([0, 100]);
    for (const r of trees) expect(r.maxLogprobDelta).toBeGreaterThan(1e-2);
  });

  it('trees: zero against the same weights', async () => {
    for (const r of await treeAgreement(a, same, [16, 64], [0, 100])) expect(r).toMatchObject({ maxLogprobDelta: 0, top1Equal: true });
  });
});
