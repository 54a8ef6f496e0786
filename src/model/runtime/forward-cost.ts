import type { LoadedModel } from '../types.js';

export interface ForwardCost {
  k: number;
  ms: number;
}

/**
 * Median wall time of one forward of k new tokens on top of `past` cached tokens, for each k.
 * Rounds interleave the ks so that machine noise hits all of them alike; the first rounds (JIT, ORT's first runs:
 * k = 1 measured ~0.75 ms there against ~0.5 ms in steady decoding) are discarded, and each timed forward follows an
 * untimed one of the same k.
 */
const WARMUP_ROUNDS = 4;

export async function measureForwardCost(model: LoadedModel, ks: number[], past: number, rounds: number): Promise<ForwardCost[]> {
  const maxK = Math.max(...ks);
  const pastLen = Math.max(0, Math.min(past, model.info.contextLength - maxK));
  const seq = model.newSequence();
  try {
    const token = (i: number) => (i * 7919 + 13) % model.info.vocabSize;
    const chunk = 256;
    for (let at = 0; at < pastLen; at += chunk) {
      const n = Math.min(chunk, pastLen - at);
      await seq.forward({ tokens: Int32Array.from({ length: n }, (_, i) => token(at + i)), positions: Int32Array.from({ length: n }, (_, i) => at + i), mask: null });
    }
    const inputs = ks.map((k) => ({
      tokens: Int32Array.from({ length: k }, (_, i) => token(pastLen + i)),
      positions: Int32Array.from({ length: k }, (_, i) => pastLen + i),
    }));
    const times: number[][] = ks.map(() => []);
    for (let r = 1 - WARMUP_ROUNDS; r <= Math.max(1, rounds); r++) {
      for (let i = 0; i < ks.length; i++) {
        // An untimed forward of the same k first: right after a wide forward (64 after 1 in the previous round) a
        // narrow one runs on cold caches and took twice its steady-state time, which made k = 1 look dearer than
        // k = 8 and sent the adaptive budget after drafts that could not pay off.
        await seq.forward({ ...inputs[i], mask: null });
        seq.truncate(pastLen);
        const t0 = performance.now();
        await seq.forward({ ...inputs[i], mask: null });
        const dt = performance.now() - t0;
        seq.truncate(pastLen);
        if (r > 0) times[i].push(dt);
      }
    }
    return ks.map((k, i) => ({ k, ms: median(times[i]) }));
  } finally {
    seq.dispose();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
