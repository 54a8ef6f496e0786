import { describe, expect, it } from 'vitest';
import { isSlidingLayer, layerRope, llama3Divisors, ropeParams, ropeTables, yarnRope } from '../../src/model/builder/rope.js';
import { parseHfConfig } from '../../src/model/builder/sources/hf-config.js';
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

  it('YaRN of Qwen3 (factor 4 over 32k): fast frequencies kept, slow ones divided by 4, a ramp between, temperature 1 + 0.1 ln 4', () => {
    const { divisors, attentionFactor } = yarnRope(1e6, 128, { factor: 4, originalMaxPositions: 32768 });
    expect(divisors).toHaveLength(64);
    // Pairs 0..low keep their frequency (they turn > 32 times over 32k positions), pairs past high are interpolated.
    const low = Math.floor((128 * Math.log(32768 / (32 * 2 * Math.PI))) / (2 * Math.log(1e6)));
    const high = Math.ceil((128 * Math.log(32768 / (2 * Math.PI))) / (2 * Math.log(1e6)));
    expect(divisors.slice(0, low + 1).every((x) => x === 1)).toBe(true);
    expect(divisors.slice(high).every((x) => x === 4)).toBe(true);
    for (let j = 1; j < divisors.length; j++) expect(divisors[j]).toBeGreaterThanOrEqual(divisors[j - 1]);
    expect(attentionFactor).toBeCloseTo(1 + 0.1 * Math.log(4), 12);
  });

  it('reads rope_scaling yarn (with its betas and attention factor) and caps dynamic NTK at the original context', () => {
    const base = { model_type: 'qwen3', vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, head_dim: 16, rope_theta: 1e6 };
    const yarn = parseHfConfig({ ...base, max_position_embeddings: 4096, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 1024, beta_fast: 16, attention_factor: 1.2 } });
    expect(yarn).toMatchObject({ maxPositions: 4096, ropeAttentionFactor: 1.2, ropeFreqDivisors: yarnRope(1e6, 16, { factor: 4, originalMaxPositions: 1024, betaFast: 16 }).divisors });
    const dynamic = parseHfConfig({ ...base, max_position_embeddings: 4096, rope_scaling: { type: 'dynamic', factor: 2, original_max_position_embeddings: 2048 } });
    expect(dynamic.maxPositions).toBe(2048);
    expect(dynamic.ropeFreqDivisors).toBeUndefined();
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
