/** Per-request drafting counters: what was drafted, what was kept, and at which depths. */
export class DraftCounters {
  steps = 0;
  draftTokens = 0;
  acceptedTokens = 0;
  /** acceptedByPosition[d] = steps that accepted a draft token at depth d + 1. */
  readonly acceptedByPosition: number[] = [];

  /** One step: `drafted` draft tokens went into the forward (root excluded), `accepted` of them were kept. */
  record(drafted: number, accepted: number): void {
    this.steps++;
    this.draftTokens += drafted;
    this.acceptedTokens += accepted;
    for (let d = 0; d < accepted; d++) this.acceptedByPosition[d] = (this.acceptedByPosition[d] ?? 0) + 1;
  }

  /** Tokens produced per forward: every step yields its accepted tokens plus one. */
  get tokensPerStep(): number {
    return this.steps === 0 ? 0 : (this.acceptedTokens + this.steps) / this.steps;
  }

  /** Share of drafted tokens that were kept. */
  get acceptanceRate(): number {
    return this.draftTokens === 0 ? 0 : this.acceptedTokens / this.draftTokens;
  }
}
