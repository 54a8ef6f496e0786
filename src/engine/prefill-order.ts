/** A prompt waiting for prefill: when its job joined the decode loop (performance.now()) and what is left of it. */
export interface WaitingPrompt {
  readonly arrived: number;
  readonly gen: { readonly promptLeft: number };
}

/** Weight of the newest prefill forward in the running cost per token. */
const SMOOTHING = 0.2;

/**
 * The order in which waiting prompts are prefilled: first the one that would be done first if it had been served
 * alone since it arrived, at arrival + prompt left × prefill's cost per token. A short prompt passes long ones, so
 * its time to first token stays near its own prefill; a long one passes every prompt that arrives after its own
 * finish time, so none starves. Oldest first made short prompts queue behind long ones: at 8 clients on the
 * 150M-cost model (rag-eval prompts of 10 to 1300 tokens) p50 time to first token was ×2.1–2.4 of 1 client in the
 * worker, and ×1.5–1.7 in this order (with prefill forwards filling the token budget, see worker.ts).
 */
export class PrefillOrder {
  /** Prefill's cost per prompt token, ms: it weighs a prompt's length against its time waited. */
  private msPerToken: number;

  constructor(initialMsPerToken: number) {
    this.msPerToken = initialMsPerToken;
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
