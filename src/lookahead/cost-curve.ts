/** One measured point: a forward of `k` new tokens took `ms` milliseconds. */
export interface CostPoint {
  k: number;
  ms: number;
}

/**
 * The most one observation may scale a point by (or its inverse): a single stall (the K/V buffers growing by a
 * gigabyte took 1.7 s on the 150M-cost model, against ~80 ms forwards) must not double the curve and switch
 * drafting off for the steps it takes to decay. A lasting change still moves the curve, by alpha a step.
 */
const MAX_RATIO = 2;

/**
 * Milliseconds per forward as a function of the number of new tokens, from points measured at load
 * (k = 1, 2, 4, ..., 64), interpolated linearly and extrapolated along the last segment. Observed step times
 * refresh it in flight, so it follows the machine's load and the growing context. Shared by the requests of a model.
 */
export class CostCurve {
  private readonly ks: Float64Array;
  private readonly ms: Float64Array;

  constructor(points: readonly CostPoint[], private readonly alpha = 0.05) {
    const sorted = points.filter((p) => p.k >= 1 && p.ms > 0).sort((a, b) => a.k - b.k);
    if (sorted.length === 0) throw new RangeError('a cost curve needs at least one point with k >= 1 and ms > 0');
    this.ks = Float64Array.from(sorted, (p) => p.k);
    this.ms = Float64Array.from(sorted, (p) => p.ms);
    // A forward of more tokens never costs less: a point above a later one was measured while the machine was busy
    // (the curve is measured on shared cores), and left there it would keep drafts of that size from ever being
    // tried and corrected. Each point is capped by the points after it.
    for (let j = this.ms.length - 2; j >= 0; j--) if (this.ms[j] > this.ms[j + 1]) this.ms[j] = this.ms[j + 1];
  }

  cost(k: number): number {
    const ks = this.ks;
    const last = ks.length - 1;
    if (last === 0 || k <= ks[0]) return this.ms[0];
    let i = 0;
    while (i < last - 1 && k > ks[i + 1]) i++;
    const t = (k - ks[i]) / (ks[i + 1] - ks[i]);
    return Math.max(this.ms[0], this.ms[i] + t * (this.ms[i + 1] - this.ms[i]));
  }

  /**
   * Folds in an observed forward time: the bracketing points move toward the observation, rescaled by the
   * curve's own shape, in proportion to how close they are to `k`.
   */
  observe(k: number, ms: number): void {
    if (!(ms > 0) || !(k >= 1)) return;
    const ratio = Math.min(MAX_RATIO, Math.max(1 / MAX_RATIO, ms / this.cost(k)));
    const ks = this.ks;
    const last = ks.length - 1;
    let i = 0;
    while (i < last && k >= ks[i + 1]) i++;
    if (i === last || k <= ks[0]) {
      this.update(i, 1, ratio);
      this.keepMonotone(i);
      return;
    }
    const t = (k - ks[i]) / (ks[i + 1] - ks[i]);
    this.update(i, 1 - t, ratio);
    this.update(i + 1, t, ratio);
    this.keepMonotone(t < 0.5 ? i : i + 1);
  }

  /** Keeps the curve non-decreasing around the freshly updated point `at`: stale neighbours yield to it. */
  private keepMonotone(at: number): void {
    for (let j = at - 1; j >= 0; j--) if (this.ms[j] > this.ms[j + 1]) this.ms[j] = this.ms[j + 1];
    for (let j = at + 1; j < this.ms.length; j++) if (this.ms[j] < this.ms[j - 1]) this.ms[j] = this.ms[j - 1];
  }

  /** Moves point j toward `ratio` times its value (observed / expected), by alpha * weight; called every step. */
  private update(j: number, weight: number, ratio: number): void {
    this.ms[j] += this.alpha * weight * (this.ms[j] * ratio - this.ms[j]);
  }

  points(): CostPoint[] {
    return Array.from(this.ks, (k, i) => ({ k, ms: this.ms[i] }));
  }
}
