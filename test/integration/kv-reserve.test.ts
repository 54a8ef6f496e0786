import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { LoadedModel, Sequence } from '../../src/model/types.js';

// Sequence.reserve: a long prompt's K/V gets its room at once instead of a region doubled (and copied) chunk after
// chunk. The room must change nothing the sequence computes, and hold the rows asked for, not the next power of two.
const root = mkdtempSync(join(tmpdir(), 'kv-reserve-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('K/V reserved ahead (CPU slab)', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    const dir = join(root, 'model');
    await buildModel(new SyntheticSource(syntheticConfig({ hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: 256, maxPositions: 2048 }), 3), { dtype: 'fp32', attention: 'exact', layout: 'tree' }, dir);
    model = await openBuiltModel(dir, { threads: 1 });
  }, 120_000);
  afterAll(() => model?.dispose());

  async function run(seq: Sequence): Promise<number[]> {
    const prompt = Int32Array.from({ length: 700 }, (_, i) => (i * 37) % 256);
    const out: number[] = [];
    for (let at = 0; at < prompt.length; at += 128) {
      const tokens = prompt.subarray(at, Math.min(prompt.length, at + 128));
      out.push(...(await seq.forward({ tokens, positions: Int32Array.from(tokens, (_, i) => at + i), mask: null })));
    }
    for (let t = 0; t < 5; t++) out.push(...(await seq.forward({ tokens: Int32Array.of(t + 1), positions: Int32Array.of(seq.length), mask: null })));
    return out;
  }

  it('computes the same numbers with and without it, in a region of the rows asked for', async () => {
    const plain = model.newSequence();
    const reserved = model.newSequence();
    reserved.reserve!(700 + 5);
    const perRow = model.info.kvBytesPerToken;
    expect(reserved.residency().hostBytes).toBe(768 * perRow);
    expect(await run(reserved)).toEqual(await run(plain));
    expect(reserved.residency().hostBytes).toBe(768 * perRow);
    expect(plain.residency().hostBytes).toBe(1024 * perRow);
    plain.dispose();
    reserved.dispose();
  });

  it('a fork with room copies its rows straight into a region of that size, and computes as its source', async () => {
    const source = model.newSequence();
    const tokens = Int32Array.from({ length: 300 }, (_, i) => (i * 11) % 256);
    await source.forward({ tokens, positions: Int32Array.from(tokens, (_, i) => i), mask: null });
    const fork = source.fork!(300, 705);
    expect(fork.residency().hostBytes).toBe(768 * model.info.kvBytesPerToken);
    const next = (seq: Sequence) => seq.forward({ tokens: Int32Array.of(9), positions: Int32Array.of(300), mask: null }).then((l) => Array.from(l));
    expect(await next(fork)).toEqual(await next(source));
    fork.dispose();
    source.dispose();
  });
});
