import type { CostCurve } from './cost-curve.js';

export interface BudgetOptions {
  /** The request's decodingLength: never exceeded. */
  decodingLength: number;
  /** The request's branchLength: no step can accept more. */
  branchLength: number;
  /** Weight of the newest observation in a size's running mean of accepted tokens. */
  alpha?: number;
  /**
   * Kinds of step learnt apart (default 1): a step whose draft copies a long earlier match accepts far more than
   * one drafting from n-gram counts alone, so one mean per size would be wrong for both.
   */
  contexts?: number;
}

/** Steps between probes of the next size up while it looks unprofitable: doubles per failed probe, up to the max. */
const MIN_BACKOFF = 16;
const MAX_BACKOFF = 256;
/** A size observed this recently is not re-probed just because a smaller one was accepted in full. */
const REPROBE_AGE = 64;

/**
 * Chooses each step's draft size k (root included) among 1, 2, 4, ..., branchLength + 1 and decodingLength, maximising the expected
 * tokens per millisecond, (E[accepted | k] + 1) / cost(k), from the cost curve and a running mean of what drafts
 * of each size achieved.
 *
 * A size with no data is optimistic (a full branch accepted), so it gets tried. A size that keeps failing sinks to
 * zero and k = 1 (plain decoding) wins; the next size up is then re-probed once after a back-off that doubles with
 * each failed probe, so text with nothing to copy pays almost nothing. A size accepted in full makes the next
 * size up optimistic again, so copy-heavy text climbs to wide drafts in a few steps. A step whose draft came back
 * empty taught nothing about acceptance and cost one token's forward: it is not counted against the size asked for.
 *
 * Statistics are kept per step context (see BudgetOptions.contexts). One controller may serve many requests in turn
 * (the engine shares one per draft setting), so a new request starts from what earlier ones learnt instead of
 * re-probing every size; each next() must be followed by its observe() before the next next().
 */
export class BudgetController {
  /** Candidate sizes, ascending; sizes[0] = 1. */
  readonly sizes: Int32Array;
  /** How often each size was chosen (parallel to `sizes`). */
  readonly chosen: Float64Array;
  /** Per context and size (index context * sizes.length + size index). */
  private readonly mean: Float64Array;
  /** Observations since the size was last made optimistic; 0 = use the prior alone. */
  private readonly seen: Int32Array;
  private readonly lastSeen: Float64Array;
  private readonly prior: Float64Array;
  private readonly alpha: number;
  /** Per context. */
  private readonly backoff: Int32Array;
  private readonly sinceProbe: Int32Array;
  private step = 0;
  private last = 0;
  private lastContext = 0;

  constructor(
    private readonly curve: CostCurve,
    options: BudgetOptions,
  ) {
    const max = Math.max(1, Math.floor(options.decodingLength));
    const sizes: number[] = [];
    for (let k = 1; k < max; k *= 2) sizes.push(k);
    sizes.push(max);
    // A full branch as one chain (root + branchLength nodes): what a long copied match needs, and no more.
    const chain = Math.floor(options.branchLength) + 1;
    if (chain > 1 && chain < max && !sizes.includes(chain)) sizes.push(chain);
    sizes.sort((a, b) => a - b);
    this.sizes = Int32Array.from(sizes);
    const contexts = Math.max(1, Math.floor(options.contexts ?? 1));
    const cells = contexts * sizes.length;
    this.chosen = new Float64Array(sizes.length);
    this.mean = new Float64Array(cells);
    this.seen = new Int32Array(cells);
    this.lastSeen = new Float64Array(cells).fill(-Infinity);
    this.prior = Float64Array.from(sizes, (k) => Math.min(k - 1, Math.max(0, options.branchLength)));
    this.alpha = options.alpha ?? 0.3;
    this.backoff = new Int32Array(contexts).fill(MIN_BACKOFF);
    this.sinceProbe = new Int32Array(contexts);
  }

  /** Expected accepted draft tokens for the size at `index`, in `context`. */
  expectedAccepted(index: number, context = 0): number {
    const cell = context * this.sizes.length + index;
    return this.seen[cell] === 0 ? this.prior[index] : this.mean[cell];
  }

  /**
   * The size for the next step (root included), for a step of kind `context`, when `others` tokens of other jobs
   * share the forward: a size is weighed by what the whole forward would cost.
   */
  next(context = 0, others = 0): number {
    this.step++;
    const base = context * this.sizes.length;
    let best = 0;
    let bestRate = 1 / this.curve.cost(others + 1);
    for (let a = 1; a < this.sizes.length; a++) {
      const rate = (this.expectedAccepted(a, context) + 1) / this.curve.cost(others + this.sizes[a]);
      if (rate > bestRate) {
        best = a;
        bestRate = rate;
      }
    }
    const up = best + 1;
    if (up < this.sizes.length && this.seen[base + up] > 0 && ++this.sinceProbe[context] >= this.backoff[context]) {
      this.seen[base + up] = 0;
      this.sinceProbe[context] = 0;
      this.backoff[context] = Math.min(2 * this.backoff[context], MAX_BACKOFF);
      best = up;
    }
    this.last = best;
    this.lastContext = context;
    this.chosen[best]++;
    return this.sizes[best];
  }

  /**
   * After a step: `size` tokens of this job went into a forward of `total` tokens (1 = no draft), `accepted` draft
   * tokens were kept, and the forward took `forwardMs`. Acceptance is credited to the size and context of the last
   * `next()`.
   */
  observe(size: number, accepted: number, forwardMs: number, total = size): void {
    this.curve.observe(total, forwardMs);
    if (size <= 1 || this.last === 0) return;
    const a = this.last;
    const base = this.lastContext * this.sizes.length;
    const cell = base + a;
    const probe = this.seen[cell] === 0;
    if (probe) this.mean[cell] = this.prior[a];
    // The prior counts as one observation, so a single unlucky step does not condemn a size.
    const n = ++this.seen[cell];
    this.mean[cell] += Math.max(this.alpha, 1 / (n + 1)) * (accepted - this.mean[cell]);
    this.lastSeen[cell] = this.step;
    if (probe && accepted > 0) this.backoff[this.lastContext] = MIN_BACKOFF;
    const up = a + 1;
    if (accepted >= this.prior[a] && up < this.sizes.length && this.step - this.lastSeen[base + up] >= REPROBE_AGE) {
      this.seen[base + up] = 0;
    }
  }

  /** Sizes chosen so far: size → steps. */
  choices(): Record<number, number> {
    const out: Record<number, number> = {};
    for (let a = 0; a < this.sizes.length; a++) if (this.chosen[a] > 0) out[this.sizes[a]] = this.chosen[a];
    return out;
  }
}
