import { describe, expect, it } from 'vitest';
import { isSlidingLayer, layerRope, llama3Divisors, ropeParams, ropeTables } from '../../src/model/builder/rope.js';
import { syntheticConfig } from '../../src/model/builder/sources/synthetic.js';

describe('RoPE frequencies', () => {
  it('llama3 scaling of Llama 3.1: high frequencies kept, low ones divided by 8, a smooth band between', () => {
    const d = llama3Divisors(500000, 128, { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    expect(d).toHaveLength(64);
    expect(d.slice(0, 10).every((x) => x === 1)).toBe(true);
    expect(d.slice(-10).every((x) => x === 8)).toBe(true);
    const band = d.filter((x) => x > 1 && x < 8);
    expect(band.length).toBeGreaterThan(0);
    for (let j = 1; j < d.length; j++) expect(d[j]).toBeGreaterThanOrEqual(d[j - 1]);
  });

  it('tables: divisors slow a frequency down, the attention factor scales cos and sin, partial dims only', () => {
    const plain = ropeTables({ theta: 10000, dim: 4, divisors: null, attentionFactor: 1 }, 3);
    const scaled = ropeTables({ theta: 10000, dim: 4, divisors: [2, 1], attentionFactor: 1.5 }, 3);
    expect(plain.cos).toHaveLength(6);
    // position 2, frequency 0 (theta^0 = 1): angle 2 plain, angle 1 when divided by 2.
    expect(plain.cos[4]).toBeCloseTo(Math.cos(2), 6);
    expect(scaled.cos[4]).toBeCloseTo(1.5 * Math.cos(1), 6);
    expect(scaled.sin[5]).toBeCloseTo(1.5 * Math.sin(2 / 100), 6);
  });

  it('LongRoPE uses the short factors up to the original context and the long ones beyond it', () => {
    const c = syntheticConfig({ hiddenSize: 32, numLayers: 1, numHeads: 2, ropeFreqDivisors: [1, 2, 3, 4, 5, 6, 7, 8], ropeLongFreqDivisors: [9, 9, 9, 9, 9, 9, 9, 9], ropeOriginalMaxPositions: 256, maxPositions: 256 });
    expect(ropeParams(c, 'global').divisors).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ropeParams({ ...c, maxPositions: 1024 }, 'global').divisors).toEqual([9, 9, 9, 9, 9, 9, 9, 9]);
  });

  it('Gemma 3 local layers use their own base and no scaling; NoPE layers none at all', () => {
    const c = syntheticConfig({ hiddenSize: 32, numLayers: 4, numHeads: 2, slidingRopeTheta: 10000, slidingLayers: [0, 1, 2], ropeTheta: 1e6, ropeFreqDivisors: new Array(8).fill(8) });
    expect([0, 1, 2, 3].map((i) => layerRope(c, i))).toEqual(['sliding', 'sliding', 'sliding', 'global']);
    expect(ropeParams(c, 'sliding')).toMatchObject({ theta: 10000, divisors: null });
    // No window in the config (it covers the context): no layer is masked, yet local layers keep their base.
    expect(isSlidingLayer(c, 0)).toBe(false);
    expect(layerRope({ ...c, noRopeLayers: [3] }, 3)).toBe('none');
  });
});
