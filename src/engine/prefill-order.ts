import type { CostPoint } from '../lookahead/index.js';

/** A prompt waiting for prefill: when its job joined the decode loop (performance.now()) and what is left of it. */
export interface WaitingPrompt {
  readonly arrived: number;
  readonly gen: { readonly promptLeft: number };
}

/** Weight of the newest prefill forward in the running cost per token. */
const SMOOTHING = 0.2;
/** A forward whose cost per token is within this factor of the longest measured one's is long enough to be efficient. */
const EFFICIENT = 1.1;

/**
 * The order in which waiting prompts are prefilled: first the one that would be done first if it had been served
 * alone since it arrived, at arrival + prompt left × prefill's cost per token. A short prompt passes long ones, so
 * its time to first token stays near its own prefill; a long one passes every prompt that arrives after its own
 * finish time, so none starves. Oldest first made short prompts queue behind long ones: at 8 clients on the
 * 150M-cost model (the bench's rag-eval prompts, 33 to 1030 tokens) p50 time to first token was ×2.1–2.4 of 1
 * client in the worker, and ×1.5–1.7 in this order (with prefill forwards filling the token budget, see worker.ts).
 */
export class PrefillOrder {
  /** Prefill's cost per prompt token, ms: it weighs a prompt's length against its time waited. */
  private msPerToken: number;
  /**
   * Tokens from which a forward costs about the least per token (from the load-time cost curve): once a prefill
   * forward holds this many, later prompts do not join it, as each would add its tokens' full cost to the time to
   * first token of the prompts before it and save next to nothing. Measured on the 150M-cost model: 2.2 ms per
   * token at 32 tokens, 2.1 at 64; filling a 256-token budget made a 35-token prompt wait for ~220 other tokens.
   */
  readonly enough: number;

  constructor(costCurve: readonly CostPoint[]) {
    const last = costCurve.at(-1);
    this.msPerToken = last ? last.ms / last.k : 0;
    const efficient = costCurve.find((p) => p.ms / p.k <= EFFICIENT * this.msPerToken);
    this.enough = efficient ? efficient.k : Number.POSITIVE_INFINITY;
  }

  /** A prefill forward of `tokens` prompt tokens took `ms`. */
  observe(ms: number, tokens: number): void {
    if (tokens > 0 && ms > 0) this.msPerToken += SMOOTHING * (ms / tokens - this.msPerToken);
  }

  /** Sorts `prompts` in place, the first to serve first. */
  sort(prompts: WaitingPrompt[]): void {
    if (prompts.length > 1) prompts.sort(this.servedBefore);
  }

  private readonly servedBefore = (a: WaitingPrompt, b: WaitingPrompt): number =>
    a.arrived - b.arrived + (a.gen.promptLeft - b.gen.promptLeft) * this.msPerToken;
}
