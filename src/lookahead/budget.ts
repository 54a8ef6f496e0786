import type { CostCurve } from './cost-curve.js';

export interface BudgetOptions {
  /** The request's decodingLength: never exceeded. */
  decodingLength: number;
  /** The request's branchLength: no step can accept more. */
  branchLength: number;
  /** Per-step forgetting of acceptance statistics; lower adapts faster. */
  decay?: number;
  /** Weight, in steps, of the optimistic prior behind each size's estimate. */
  priorWeight?: number;
}

/**
 * Chooses each step's draft size k (root included) among 1, 2, 4, ... and decodingLength, maximising the expected
 * tokens per millisecond, (E[accepted | k] + 1) / cost(k).
 *
 * E[accepted | k] is a decayed mean of what drafts of that budget achieved, blended with an optimistic prior
 * (a full branch accepted) whose weight returns as the data ages. So a size that keeps failing is dropped in favour
 * of k = 1 (plain decoding), is re-probed only after a long quiet stretch (a small cost), and sizes that keep
 * being accepted in full lead to trying the next larger one. A step whose draft came back empty taught nothing
 * about acceptance and cost one token's forward: it is not counted against the size that was asked for.
 */
export class BudgetController {
  /** Candidate sizes, ascending; sizes[0] = 1. */
  readonly sizes: Int32Array;
  /** How often each size was chosen (parallel to `sizes`). */
  readonly chosen: Float64Array;
  private readonly sum: Float64Array;
  private readonly weight: Float64Array;
  private readonly prior: Float64Array;
  private readonly decay: number;
  private readonly priorWeight: number;
  private last = 0;

  constructor(
    private readonly curve: CostCurve,
    options: BudgetOptions,
  ) {
    const max = Math.max(1, Math.floor(options.decodingLength));
    const sizes: number[] = [];
    for (let k = 1; k < max; k *= 2) sizes.push(k);
    sizes.push(max);
    this.sizes = Int32Array.from(sizes);
    this.chosen = new Float64Array(sizes.length);
    this.sum = new Float64Array(sizes.length);
    this.weight = new Float64Array(sizes.length);
    this.prior = Float64Array.from(sizes, (k) => Math.min(k - 1, Math.max(0, options.branchLength)));
    this.decay = options.decay ?? 0.98;
    this.priorWeight = options.priorWeight ?? 0.5;
  }

  /** Expected accepted draft tokens for the size at `index`. */
  expectedAccepted(index: number): number {
    if (index === 0) return 0;
    return (this.sum[index] + this.prior[index] * this.priorWeight) / (this.weight[index] + this.priorWeight);
  }

  /** The size for the next step (root included). */
  next(): number {
    let best = 0;
    let bestRate = 1 / this.curve.cost(1);
    for (let a = 1; a < this.sizes.length; a++) {
      const rate = (this.expectedAccepted(a) + 1) / this.curve.cost(this.sizes[a]);
      if (rate > bestRate) {
        best = a;
        bestRate = rate;
      }
    }
    this.last = best;
    this.chosen[best]++;
    return this.sizes[best];
  }

  /**
   * After a step: `size` tokens went into the forward (1 = no draft), `accepted` draft tokens were kept, and the
   * forward took `forwardMs`. Acceptance is credited to the size chosen by the last `next()`.
   */
  observe(size: number, accepted: number, forwardMs: number): void {
    this.curve.observe(size, forwardMs);
    for (let a = 1; a < this.sizes.length; a++) {
      this.sum[a] *= this.decay;
      this.weight[a] *= this.decay;
    }
    if (size <= 1) return;
    const arm = this.last > 0 ? this.last : this.indexFor(size);
    this.sum[arm] += accepted;
    this.weight[arm] += 1;
  }

  /** Sizes chosen so far: size → steps. */
  choices(): Record<number, number> {
    const out: Record<number, number> = {};
    for (let a = 0; a < this.sizes.length; a++) if (this.chosen[a] > 0) out[this.sizes[a]] = this.chosen[a];
    return out;
  }

  private indexFor(size: number): number {
    let a = 1;
    while (a < this.sizes.length - 1 && this.sizes[a] < size) a++;
    return a;
  }
}
