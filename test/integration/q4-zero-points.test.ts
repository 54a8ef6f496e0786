import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LookaheadOptions } from '../../src/engine/types.js';
import { buildModel } from '../../src/model/builder/build.js';
import type { BuildOptions } from '../../src/model/builder/options.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { LoadedModel } from '../../src/model/types.js';
import { LOOKAHEAD_OFF, startEngine, type TestEngine } from '../helpers/engine.js';

/**
 * q4 with zero points (asymmetric uint4 blocks, the q4 default) against the symmetric q4 it replaced, both against
 * fp32 on the same synthetic weights; and lossless decoding on it through the real engine.
 */
const root = mkdtempSync(join(tmpdir(), 'q4-zero-points-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const V = 512;
const PROMPTS = 24;
const LENGTH = 48;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('q4 zero points agree with fp32 at least as well as symmetric q4', () => {
  const models = new Map<string, LoadedModel>();
  const builds: Record<string, BuildOptions> = {
    fp32: { dtype: 'fp32', attention: 'exact', layout: 'tree' },
    symmetric: { dtype: 'q4', attention: 'exact', layout: 'tree', nbits: { zeroPoints: false } },
    zeroPoints: { dtype: 'q4', attention: 'exact', layout: 'tree' },
  };

  beforeAll(async () => {
    // Untied: the LM head has weights of its own, quantized like every other matmul.
    const config = syntheticConfig({ hiddenSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: V, tiedEmbeddings: false });
    for (const [name, options] of Object.entries(builds)) {
      await buildModel(new SyntheticSource(config, 11), options, join(root, name));
      models.set(name, await openBuiltModel(join(root, name)));
    }
  }, 120_000);
  afterAll(async () => {
    for (const m of models.values()) await m.dispose();
  });

  /** Logits of every row of random sequences (one causal forward each: rows equal decoding alone). */
  async function logits(name: string): Promise<Float32Array[]> {
    const rand = lcg(7);
    const out: Float32Array[] = [];
    for (let p = 0; p < PROMPTS; p++) {
      const seq = models.get(name)!.newSequence();
      const tokens = Int32Array.from({ length: LENGTH }, () => Math.floor(rand() * V));
      out.push((await seq.forward({ tokens, positions: Int32Array.from({ length: LENGTH }, (_, i) => i), mask: null })).slice());
      seq.dispose();
    }
    return out;
  }

  function argmaxRows(l: Float32Array): number[] {
    return Array.from({ length: l.length / V }, (_, r) => {
      let best = 0;
      for (let j = 1; j < V; j++) if (l[r * V + j] > l[r * V + best]) best = j;
      return best;
    });
  }

  it('fewer top-1 flips and a smaller logit error than symmetric q4', async () => {
    const ref = await logits('fp32');
    const score = async (name: string) => {
      const got = await logits(name);
      let same = 0;
      let err = 0;
      let norm = 0;
      got.forEach((l, p) => {
        const a = argmaxRows(l);
        argmaxRows(ref[p]).forEach((t, r) => (same += a[r] === t ? 1 : 0));
        l.forEach((x, i) => {
          err += (x - ref[p][i]) ** 2;
          norm += ref[p][i] ** 2;
        });
      });
      return { agreement: same / (PROMPTS * LENGTH), error: Math.sqrt(err / norm) };
    };
    const sym = await score('symmetric');
    const zp = await score('zeroPoints');
    console.log(`teacher-forced top-1 agreement with fp32: symmetric q4 ${sym.agreement.toFixed(3)}, zero points ${zp.agreement.toFixed(3)}; relative logit error ${sym.error.toFixed(4)} vs ${zp.error.toFixed(4)}`);
    // Both really are 4-bit (not accidentally fp32) ...
    expect(sym.error).toBeGreaterThan(1e-3);
    expect(zp.error).toBeGreaterThan(1e-3);
    // ... and zero points are the better of the two.
    expect(zp.error).toBeLessThan(sym.error);
    expect(zp.agreement).toBeGreaterThanOrEqual(sym.agreement);
  });
});

describe('lossless greedy decoding on q4 with zero points (synthetic model)', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine(['--dtype', 'q4']);
  }, 120_000);
  afterAll(() => t?.close());

  it('identical tokens with lookahead on and off; drafts verified in multi-token forwards', async () => {
    const hier: LookaheadOptions = { enabled: true, layout: 'hier', decodingLength: 16, branchLength: 8 };
    const rand = lcg(3);
    let accepted = 0;
    for (let p = 0; p < 12; p++) {
      const ids = Array.from({ length: 8 + p }, () => 3 + Math.floor(rand() * 200));
      const off = await t.run(ids, { maxTokens: 48, lookahead: LOOKAHEAD_OFF });
      // The global trie now holds this answer: the second pass drafts it and verifies whole branches.
      for (let pass = 0; pass < 2; pass++) {
        const on = await t.run(ids, { maxTokens: 48, lookahead: hier });
        expect(on.ids, `prompt ${p} pass ${pass}`).toEqual(off.ids);
        accepted += on.result.lookahead.acceptedTokens;
      }
    }
    expect(accepted).toBeGreaterThan(12);
  }, 300_000);
});
