/**
 * Paired comparisons: two arms measured on the same prompts give one ratio per prompt, and the uncertainty of their
 * typical ratio comes from resampling prompts (a percentile bootstrap). Pairing removes the prompt-to-prompt spread
 * (long vs short answers, easy vs hard drafting) that would swamp a ratio of two unpaired means. Seeded, so a report
 * reproduces from its JSON.
 */
import { Rng } from '../src/engine/rng.js';
import { percentile } from './metrics.js';

/** A typical ratio (geometric mean over prompts) and its confidence interval. */
export interface PairedInterval {
  /** Prompts with a value in both arms. */
  n: number;
  estimate: number;
  low: number;
  high: number;
}

export interface BootstrapOptions {
  seed: number;
  /** Resamples of the prompts (default 2000). */
  resamples?: number;
  /** Two-sided coverage (default 0.95). */
  level?: number;
}

export const DEFAULT_RESAMPLES = 2000;
export const DEFAULT_LEVEL = 0.95;

/**
 * arm[k] / base[k] for every key both maps hold with a finite positive value, in `base`'s key order. A prompt missing
 * from one arm (failed, or no decode time) is left out rather than guessed.
 */
export function perPromptRatios(base: ReadonlyMap<string, number>, arm: ReadonlyMap<string, number>): Float64Array {
  const out: number[] = [];
  for (const [key, b] of base) {
    const a = arm.get(key);
    if (a !== undefined && usable(a) && usable(b)) out.push(a / b);
  }
  return Float64Array.from(out);
}

function usable(x: number): boolean {
  return Number.isFinite(x) && x > 0;
}

/**
 * Geometric mean of per-prompt ratios (a speed-up of ×2 on one prompt and ×0.5 on another averages to ×1) with a
 * percentile bootstrap interval: resample the prompts with replacement, take each resample's geometric mean, read the
 * interval off their quantiles. null when there are no pairs.
 */
export function bootstrapRatio(ratios: ArrayLike<number>, o: BootstrapOptions): PairedInterval | null {
  const n = ratios.length;
  if (n === 0) return null;
  const logs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    logs[i] = Math.log(ratios[i]);
    sum += logs[i];
  }
  const resamples = o.resamples ?? DEFAULT_RESAMPLES;
  const level = o.level ?? DEFAULT_LEVEL;
  const rng = new Rng(o.seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += logs[rng.nextUint32() % n];
    means[r] = s / n;
  }
  means.sort();
  const tail = (1 - level) / 2;
  return { n, estimate: Math.exp(sum / n), low: Math.exp(percentile(means, tail)), high: Math.exp(percentile(means, 1 - tail)) };
}

/** Whether two intervals share any value: two measurements of one thing should. */
export function overlaps(a: PairedInterval, b: PairedInterval): boolean {
  return a.low <= b.high && b.low <= a.high;
}

/** The ABBA order of two arms for the i-th prompt (or block): A B, B A, B A, A B, … so neither arm is always first. */
export function abbaOrder<T>(arms: readonly T[], i: number): T[] {
  const flip = ((i + 1) >> 1) % 2 === 1;
  return flip ? [...arms].reverse() : [...arms];
}
