import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/rng.js';
import { Sampler, TokenPresence, topLogprobs } from '../../src/engine/sampler.js';
import type { SamplingParams } from '../../src/engine/types.js';

function params(p: Partial<SamplingParams>): SamplingParams {
  return { temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1, seed: 1234, ...p };
}

function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** HF nucleus by full sort: keep tokens whose preceding mass (most likely first) is below top_p. */
function referenceTopP(probs: number[], topP: number): Set<number> {
  const order = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  const kept = new Set<number>();
  let before = 0;
  for (const i of order) {
    if (!(before < topP) && kept.size > 0) break;
    kept.add(i);
    before += probs[i];
  }
  return kept;
}

function nonZero(probs: Float32Array): number[] {
  const ids: number[] = [];
  probs.forEach((p, i) => p > 0 && ids.push(i));
  return ids;
}

function presence(vocab: number, ids: number[]): TokenPresence {
  const p = new TokenPresence(vocab);
  p.addAll(ids);
  return p;
}

describe('Rng', () => {
  it('is reproducible per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(sa);
    // Seeds differing only above 32 bits give different streams.
    expect(new Rng(2 ** 40 + 42).nextUint32()).not.toBe(new Rng(42).nextUint32());
  });

  it('a null seed draws one and reports it so the run can be replayed', () => {
    const r = new Rng(null);
    expect(Number.isSafeInteger(r.seed)).toBe(true);
    const replay = new Rng(r.seed);
    expect(replay.nextFloat()).toBe(r.nextFloat());
    expect(new Rng(null).seed).not.toBe(r.seed);
  });

  it('floats are uniform on [0, 1)', () => {
    const r = new Rng(7);
    const bins = new Array(10).fill(0);
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const x = r.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
      bins[Math.floor(x * 10)]++;
    }
    const chi2 = bins.reduce((s, o) => s + (o - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(27.88); // df 9, p = 0.001
  });
});

describe('TokenPresence', () => {
  it('records distinct in-range ids and clears them', () => {
    const p = presence(10, [3, 5, 3, -1, 10, 9]);
    expect(p.size).toBe(3);
    expect(Array.from(p.ids.subarray(0, p.size))).toEqual([3, 5, 9]);
    expect(p.has(5) && !p.has(4)).toBe(true);
    p.clear();
    expect(p.size).toBe(0);
    expect(p.has(5)).toBe(false);
  });
});

describe('Sampler, greedy', () => {
  it('takes the first maximum and consumes no randomness', () => {
    const s = new Sampler(params({ temperature: 0, seed: 9 }), 5);
    expect(s.pick(Float32Array.of(0.1, 2, -1, 2, 1.9), null)).toBe(1);
    expect(s.rng.nextUint32()).toBe(new Rng(9).nextUint32());
    const dist = s.processedDistribution(Float32Array.of(0.1, 2, -1, 2, 1.9), null);
    expect(Array.from(dist)).toEqual([0, 1, 0, 0, 0]);
  });

  it('applies the repetition penalty HF-style before the argmax', () => {
    const s = new Sampler(params({ temperature: 0, repetitionPenalty: 2 }), 3);
    const row = Float32Array.of(2, 1.5, -1);
    expect(s.pick(row, null)).toBe(0);
    expect(s.pick(row, presence(3, [0]))).toBe(1); // 2 / 2 = 1 < 1.5
    const negative = Float32Array.of(-0.6, -1, -0.5);
    expect(s.pick(negative, presence(3, [2]))).toBe(0); // -0.5 * 2 = -1
  });
});

describe('Sampler, sampling', () => {
  it('without filters the distribution is softmax(logits / T)', () => {
    const logits = [1, 2, 0.5, -1, 3];
    const s = new Sampler(params({ temperature: 0.7 }), 5);
    const dist = s.processedDistribution(Float32Array.from(logits), null);
    const expected = softmax(logits.map((x) => x / 0.7));
    dist.forEach((p, i) => expect(p).toBeCloseTo(expected[i], 6));
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const logits = [1, 2, -0.5, -1, 3];
    const s = new Sampler(params({ temperature: 1, repetitionPenalty: 1.3 }), 5);
    const dist = s.processedDistribution(Float32Array.from(logits), presence(5, [1, 3]));
    const expected = softmax([1, 2 / 1.3, -0.5, -1 * 1.3, 3]);
    dist.forEach((p, i) => expect(p).toBeCloseTo(expected[i], 6));
  });

  it('top_k keeps the k largest (and ties with the k-th, as HF does)', () => {
    const s = new Sampler(params({ topK: 2 }), 5);
    expect(nonZero(s.processedDistribution(Float32Array.of(0, 3, 1, 2, -1), null))).toEqual([1, 3]);
    expect(nonZero(s.processedDistribution(Float32Array.of(0, 3, 2, 2, -1), null))).toEqual([1, 2, 3]);
    const dist = s.processedDistribution(Float32Array.of(0, 3, 1, 2, -1), null);
    const expected = softmax([3, 2]);
    expect(dist[1]).toBeCloseTo(expected[0], 6);
    expect(dist[3]).toBeCloseTo(expected[1], 6);
  });

  it('top_p keeps the smallest most-likely set reaching p, always at least one token', () => {
    const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    const kept = (topP: number) => nonZero(new Sampler(params({ topP }), 4).processedDistribution(logits, null));
    expect(kept(0.3)).toEqual([0]);
    expect(kept(0.75)).toEqual([0, 1]);
    expect(kept(0.85)).toEqual([0, 1, 2]);
    expect(kept(0)).toEqual([0]);
    const dist = new Sampler(params({ topP: 0.75 }), 4).processedDistribution(logits, null);
    expect(dist[0]).toBeCloseTo(0.625, 6);
    expect(dist[1]).toBeCloseTo(0.375, 6);
  });

  it('top_k and top_p on a large vocabulary match a full-sort reference, ties included', () => {
    const vocab = 5000;
    const r = new Rng(5);
    // Coarse values make many ties, which exercise the equal-to-pivot paths.
    const logits = Array.from({ length: vocab }, () => Math.round((r.nextFloat() * 12 - 6) * 4) / 4);
    const row = Float32Array.from(logits);
    for (const topP of [0.05, 0.3, 0.9, 0.999]) {
      const dist = new Sampler(params({ topP, temperature: 0.8 }), vocab).processedDistribution(row, null);
      const probs = softmax(logits.map((x) => x / 0.8));
      const expected = referenceTopP(probs, topP);
      // Equal probabilities at the boundary may be kept in any order, so compare counts and values.
      const got = nonZero(dist);
      expect(got.length).toBe(expected.size);
      const threshold = Math.min(...[...expected].map((i) => probs[i]));
      for (const i of got) expect(probs[i]).toBeGreaterThanOrEqual(threshold - 1e-12);
      expect(got.reduce((sum, i) => sum + dist[i], 0)).toBeCloseTo(1, 5);
    }
    for (const topK of [1, 7, 300, 4999]) {
      const dist = new Sampler(params({ topK }), vocab).processedDistribution(row, null);
      const kth = [...logits].sort((a, b) => b - a)[topK - 1];
      expect(nonZero(dist).length).toBe(logits.filter((x) => x >= kth).length);
    }
    // top_k first, then top_p over what it kept (the boundary is chosen away from an exact tie on p).
    const both = new Sampler(params({ topK: 100, topP: 0.5 }), vocab).processedDistribution(row, null);
    const kth = [...logits].sort((a, b) => b - a)[99];
    const inTopK = logits.map((x, i) => (x >= kth ? i : -1)).filter((i) => i >= 0);
    const restricted = softmax(inTopK.map((i) => logits[i]));
    expect(nonZero(both).length).toBe(referenceTopP(restricted, 0.5).size);
    for (const i of nonZero(both)) expect(inTopK).toContain(i);
  });

  it('empirical frequencies match softmax(logits / T) (chi-square, fixed seed)', () => {
    const logits = [0.5, 1.5, -0.3, 1.0, 0.0, 2.0];
    const temperature = 0.8;
    const s = new Sampler(params({ temperature, seed: 2024 }), logits.length);
    const row = Float32Array.from(logits);
    const n = 30_000;
    const counts = new Array(logits.length).fill(0);
    for (let i = 0; i < n; i++) counts[s.pick(row, null)]++;
    const expected = softmax(logits.map((x) => x / temperature)).map((p) => p * n);
    const chi2 = counts.reduce((sum, o, i) => sum + (o - expected[i]) ** 2 / expected[i], 0);
    expect(chi2).toBeLessThan(20.52); // df 5, p = 0.001
  });

  it('never draws what top_k / top_p removed', () => {
    const row = Float32Array.of(1, 1.2, 0.9, -2, 0.1, 1.1);
    const s = new Sampler(params({ topK: 3, topP: 0.6, seed: 3 }), 6);
    const allowed = new Set(nonZero(s.processedDistribution(row, null)));
    expect(allowed.size).toBeLessThan(3);
    for (let i = 0; i < 2000; i++) expect(allowed.has(s.pick(row, null))).toBe(true);
  });

  it('is reproducible for a seed, one RNG draw per pick', () => {
    const row = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const seq = (seed: number) => {
      const s = new Sampler(params({ seed, topP: 0.9 }), 64);
      return Array.from({ length: 50 }, () => s.pick(row, null));
    };
    expect(seq(11)).toEqual(seq(11));
    expect(seq(11)).not.toEqual(seq(12));
    // pick == processedDistribution + draw, so a verifier doing the two steps replays plain decoding.
    const a = new Sampler(params({ seed: 11, topP: 0.9 }), 64);
    const b = new Sampler(params({ seed: 11, topP: 0.9 }), 64);
    const out = new Float32Array(64);
    for (let i = 0; i < 20; i++) expect(b.draw(b.processedDistribution(row, null, out))).toBe(a.pick(row, null));
    expect(a.rng.nextUint32()).toBe(b.rng.nextUint32());
  });

  it('reuses its buffers across calls', () => {
    const s = new Sampler(params({ topP: 0.9 }), 8);
    const row = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    expect(s.processedDistribution(row, null)).toBe(s.processedDistribution(row, null));
  });
});

describe('topLogprobs', () => {
  it('reports log-softmax of the raw logits for the chosen token and the top n, most likely first', () => {
    const logits = [0.5, 2, -1, 2, 1];
    const row = Float32Array.from(logits);
    const logZ = Math.log(logits.reduce((s, x) => s + Math.exp(x), 0));
    const r = topLogprobs(row, 4, 3);
    expect(r.token).toBe(4);
    expect(r.logprob).toBeCloseTo(1 - logZ, 6);
    expect(r.top.map((t) => t.token)).toEqual([1, 3, 4]);
    r.top.forEach((t) => expect(t.logprob).toBeCloseTo(logits[t.token] - logZ, 6));
    expect(topLogprobs(row, 0, 0).top).toEqual([]);
    expect(topLogprobs(row, 0, 50).top.length).toBe(5);
  });
});

describe('Sampler, OpenAI logit adjustments', () => {
  /** A context whose output holds these tokens (with repeats), after a prompt of `prompt`. */
  function output(vocab: number, prompt: number[], generated: number[]): TokenPresence {
    const p = presence(vocab, prompt);
    for (const id of generated) p.addOutput(id);
    return p;
  }

  it('frequency penalty counts output occurrences, presence penalty applies once; prompt tokens are not penalized', () => {
    const logits = [1, 2, 0.5, -1, 3];
    const s = new Sampler(params({ temperature: 1, frequencyPenalty: 0.5, presencePenalty: 0.25 }), 5);
    const dist = s.processedDistribution(Float32Array.from(logits), output(5, [0], [4, 4, 1]));
    const expected = softmax([1, 2 - 0.5 - 0.25, 0.5, -1, 3 - 2 * 0.5 - 0.25]);
    dist.forEach((p, i) => expect(p).toBeCloseTo(expected[i], 6));
  });

  it('logit_bias shifts logits before greedy argmax; -100 bans a token; ids past the vocabulary are ignored', () => {
    const s = new Sampler(params({ temperature: 0, logitBias: { 4: -100, 2: 1, 99: 50 } }), 5);
    expect(s.pick(Float32Array.of(1, 2, 1.5, -1, 3), null)).toBe(2);
    const free = new Sampler(params({ temperature: 0 }), 5);
    expect(free.pick(Float32Array.of(1, 2, 1.5, -1, 3), null)).toBe(4);
  });

  it('greedy with penalties moves off a repeated token; the input row is left untouched', () => {
    const s = new Sampler(params({ temperature: 0, frequencyPenalty: 1 }), 3);
    const row = Float32Array.of(2, 1.5, -1);
    const ctx = new TokenPresence(3);
    expect(s.pick(row, ctx)).toBe(0);
    ctx.addOutput(0);
    expect(s.pick(row, ctx)).toBe(1); // 2 - 1 = 1 < 1.5
    expect(Array.from(row)).toEqual([2, 1.5, -1]);
    ctx.clear();
    expect(ctx.occurrences(0)).toBe(0);
    expect(s.pick(row, ctx)).toBe(0);
  });
});
