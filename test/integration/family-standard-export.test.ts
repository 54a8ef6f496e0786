import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { SyntheticSource } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import { openForeignModel } from '../../src/model/runtime/foreign-model.js';
import type { LoadedModel } from '../../src/model/types.js';
import { FAMILIES } from '../helpers/families.js';
import { maxAbsDiff } from '../unit/builder-reference.js';

const root = mkdtempSync(join(tmpdir(), 'family-standard-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Logits of a 40-token prompt fed in two chunks, so the second chunk runs past both test windows (12 and 24). */
async function logitsOf(model: LoadedModel): Promise<Float32Array> {
  const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 300);
  const seq = model.newSequence();
  await seq.forward({ tokens: Int32Array.from(ids.slice(0, 30)), positions: Int32Array.from({ length: 30 }, (_, i) => i), mask: null });
  const out = (await seq.forward({ tokens: Int32Array.from(ids.slice(30)), positions: Int32Array.from({ length: 10 }, (_, i) => 30 + i), mask: null })).slice();
  seq.dispose();
  return out;
}

describe.each(FAMILIES.map((f) => [f.name, f] as const))('%s family: the standard-layout export', (name, family) => {
  it('computes what the tree graph computes (its causal mask, window and RoPE built in the graph)', async () => {
    const source = new SyntheticSource(family.config, 4);
    await buildModel(source, { dtype: 'fp32', attention: 'onnx', layout: 'tree' }, join(root, `${name}-tree`));
    await buildModel(source, { dtype: 'fp32', attention: 'onnx', layout: 'standard' }, join(root, `${name}-standard`));
    const tree = await openBuiltModel(join(root, `${name}-tree`));
    const standard = await openForeignModel(join(root, `${name}-standard`));
    try {
      expect(maxAbsDiff(await logitsOf(standard), await logitsOf(tree))).toBeLessThanOrEqual(1e-4);
    } finally {
      await tree.dispose();
      await standard.dispose();
    }
  });
});
