import { TenantLimitError } from '../errors.js';

/**
 * Jobs in flight (queued or running) per tenant, so one tenant's burst waits its turn instead of filling the
 * engine's queue for everyone.
 */
export class TenantJobs {
  private readonly counts = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Reserves n slots or throws 429; the returned function gives back one slot per call. */
  reserve(tenant: string, n: number): () => void {
    const now = this.counts.get(tenant) ?? 0;
    if (now + n > this.max) {
      throw new TenantLimitError(
        `Too many concurrent requests for this API key: ${now} jobs in flight, ${n} more asked, at most ${this.max} allowed. Retry shortly.`,
        1,
      );
    }
    this.counts.set(tenant, now + n);
    let left = n;
    return () => {
      if (left === 0) return;
      left--;
      const count = (this.counts.get(tenant) ?? 1) - 1;
      if (count === 0) this.counts.delete(tenant);
      else this.counts.set(tenant, count);
    };
  }

  inFlight(tenant: string): number {
    return this.counts.get(tenant) ?? 0;
  }
}
