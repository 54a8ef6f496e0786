import type { CostCurve } from './cost-curve.js';

export interface BudgetOptions {
  /** The request's decodingLength: never exceeded. */
  decodingLength: number;
  /** Weight of the newest step in the running means of tokens per step and tokens fed per step. */
  alpha?: number;
}

/**
 * Expected accepted tokens a different draft size must add before the job switches to it: a new forward shape is
 * not free (kernel choice, buffers), and a size that only just wins flips back and forth on noise.
 */
const SWITCH_COST = 0.1;
/** Drafted steps observed before the floor may judge them: a step's gain is skewed (often a little lost, now and then much won). */
const FLOOR_MIN_STEPS = 32;
/** Weight of the newest drafted step in the floor's running mean of tokens gained over plain decoding. */
const FLOOR_ALPHA = 0.02;
/** Weight of a probe in that mean: probes are rare, so each must be able to turn drafting back on. */
const PROBE_WEIGHT = 0.25;
/** Steps with drafting off between probes: doubles per probe that did not pay, up to the max. */
const MIN_BACKOFF = 16;
const MAX_BACKOFF = 256;

/**
 * Chooses each step's draft size for a job from what its candidates are expected to bring and what the whole
 * forward will cost.
 *
 * The proposer gives gains[k], the expected accepted tokens of its best draft of k nodes (root included). Adding a
 * job's k tokens to a forward that already carries `others` costs tokens(others + k) − tokens(others + 1) ms more
 * than the job decoding plainly, and every job in the forward waits for it; time is worth λ tokens per ms, the rate the
 * forwards achieve (tokens produced per token fed, over the forward's tokens per ms, at this batch fill), never
 * less than plain decoding's. The size maximises gains[k] − λ · extra cost — the step that raises tokens per ms the
 * most (Dinkelbach's rule for a ratio). On a memory-bound curve (small batch, GPU) extra tokens cost little and
 * drafts grow; as the batch fills and the forward turns compute-bound, each token costs its full share and drafts
 * shrink. Sizes are only as changeable as the gains: the acceptance model behind them is calibrated on what was
 * accepted, and a size change must win by SWITCH_COST tokens.
 *
 * The floor: drafted steps are also judged after the fact, by the tokens they gained over plain decoding in the same
 * time. When that running mean turns negative (drafts that do not pay, whatever the estimates said), drafting stops,
 * and one step is let through to probe after a back-off that doubles while probes keep failing.
 *
 * One controller serves every job of a model and draft setting (the engine shares it), so a job starts from what
 * earlier ones learnt; next() and observe() may interleave across jobs (a batch chooses all sizes, then observes).
 */
export class BudgetController {
  private readonly max: number;
  private readonly alpha: number;
  /** Running means over steps: tokens produced (accepted + 1), tokens fed. */
  private tokens = 1;
  private fed = 1;
  /** Floor: running mean of the tokens drafted steps gained over plain decoding, and how many were seen. */
  private gained = 0;
  private draftedSteps = 0;
  private off = false;
  private backoff = MIN_BACKOFF;
  private sinceProbe = 0;

  /**
   * `curve`: what the forwards this controller sizes cost, by their total tokens, as observed. `tokenCurve`: what
   * extra tokens cost, the curve of a sequence alone (the default: the same). A forward of several sequences costs more
   * than one sequence of as many tokens (each attends over its own past), and its observed curve rises with the
   * sequences it happened to carry; a draft token added to one of them costs what it costs alone.
   */
  constructor(
    private readonly curve: CostCurve,
    options: BudgetOptions,
    private readonly tokenCurve: CostCurve = curve,
  ) {
    this.max = Math.max(1, Math.floor(options.decodingLength));
    this.alpha = options.alpha ?? 0.02;
  }

  /** The curve extra tokens are priced by. */
  get tokenCosts(): CostCurve {
    return this.tokenCurve;
  }

  /** Whether the floor has switched drafting off (probes aside). */
  get paused(): boolean {
    return this.off;
  }

  /**
   * The size (root included) for a job whose best drafts of k nodes are expected to bring gains[k] accepted tokens
   * (k ≤ available + 1), when `others` tokens of other jobs share the forward and the job's last size was `last`.
   */
  next(gains: ArrayLike<number>, available: number, others = 0, last = 1): number {
    const limit = Math.min(this.max, available + 1);
    let best = 1;
    if (limit > 1) {
      const lambda = this.rate(others);
      const base = this.tokenCurve.cost(others + 1);
      let bestScore = last === 1 ? 0 : -SWITCH_COST;
      for (let k = 2; k <= limit; k++) {
        const score = gains[k] - lambda * (this.tokenCurve.cost(others + k) - base) - (k === last ? 0 : SWITCH_COST);
        if (score > bestScore) {
          best = k;
          bestScore = score;
        }
      }
    }
    return best;
  }

  /**
   * After a step: `size` tokens of a job went into a forward of `total` tokens (1 = no draft, alone) that took
   * `forwardMs`, and `accepted` draft tokens were kept. The cost curve learns the forward as run, batch included.
   */
  observe(size: number, accepted: number, forwardMs: number, total = size): void {
    this.curve.observe(total, forwardMs);
    this.tokens += this.alpha * (accepted + 1 - this.tokens);
    this.fed += this.alpha * (size - this.fed);
    if (size <= 1) return;
    const others = Math.max(0, total - size);
    const plainCost = this.curve.cost(others + 1);
    // Tokens beyond what plain decoding would have produced in the extra time the draft took.
    const extra = this.tokenCurve.cost(total) - this.tokenCurve.cost(others + 1);
    const gain = accepted - (extra * (others + 1)) / plainCost;
    this.draftedSteps++;
    this.gained += (this.off ? PROBE_WEIGHT : Math.max(FLOOR_ALPHA, 1 / this.draftedSteps)) * (gain - this.gained);
    if (this.off) {
      // Probes add to the same running mean: drafting resumes once they have made it positive again.
      if (this.gained >= 0) {
        this.off = false;
        this.backoff = MIN_BACKOFF;
      } else {
        this.backoff = Math.min(2 * this.backoff, MAX_BACKOFF);
      }
    } else if (this.draftedSteps >= FLOOR_MIN_STEPS && this.gained < 0) {
      this.off = true;
      this.sinceProbe = 0;
    }
  }

  /** Tokens per ms the forwards are worth at this batch fill, at least plain decoding's. */
  private rate(others: number): number {
    const fill = others + this.fed;
    const achieved = ((this.tokens / this.fed) * fill) / this.curve.cost(fill);
    return Math.max(achieved, (others + 1) / this.curve.cost(others + 1));
  }

  /**
   * Whether the coming step may draft: false while the floor holds drafting off, except for one probe step per
   * back-off. A step that may not draft should not even prepare candidates (see JobBudget.prepare).
   */
  mayDraft(): boolean {
    if (!this.off) return true;
    if (++this.sinceProbe < this.backoff) return false;
    this.sinceProbe = 0;
    return true;
  }
}

/** What a job's sizer needs of its proposer (see Proposer.prepare). */
export interface PreparedGains {
  readonly gains: ArrayLike<number>;
  readonly available: number;
  prepare(context: ArrayLike<number>, length: number, maxNodes: number, maxDepth: number, chain: boolean): number;
  unprepare(): void;
}

/**
 * One job's sizer over the shared controllers (the engine's DraftSizer). Each step `prepare` has the proposer select
 * its candidates — unless the floor holds drafting off, so a job that does not draft pays nothing for drafting —
 * and `next` sizes them; the job's last size is remembered for the switching cost.
 */
export class JobBudget {
  private last = 1;
  private controller: BudgetController;

  constructor(
    /**
     * The controller for forwards of `items` decode items. A forward of eight sequences costs another curve than one
     * of a sequence alone with as many tokens (attention per sequence), and a floor judged on crowded forwards must
     * not switch drafting off for a job alone: each batch size learns apart.
     */
    private readonly controllers: (items: number) => BudgetController,
    private readonly proposer: PreparedGains,
  ) {
    this.controller = controllers(1);
  }

  /** The coming step rides in a forward of `items` decode items (call before `prepare`). */
  seat(items: number): void {
    this.controller = this.controllers(items);
  }

  prepare(context: ArrayLike<number>, length: number, maxNodes: number, maxDepth: number, chain: boolean): void {
    if (this.controller.mayDraft()) this.proposer.prepare(context, length, maxNodes, maxDepth, chain);
    else this.proposer.unprepare();
  }

  /** The size of the prepared step when `others` tokens of other jobs ride in the same forward. */
  next(others: number): number {
    this.last = this.controller.next(this.proposer.gains, this.proposer.available, others, this.last);
    return this.last;
  }

  observe(size: number, accepted: number, forwardMs: number, total: number): void {
    this.controller.observe(size, accepted, forwardMs, total);
  }
}
