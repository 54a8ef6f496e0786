import { DocumentRateError, PayloadTooLargeError } from '../errors.js';

/**
 * Per-tenant limits on posted documents: a size cap per post (413) and a byte budget per minute (429 with the
 * wait in Retry-After), a token bucket that refills continuously. Tenants are the configured ones only, so the
 * map of buckets is bounded by the config.
 */
export class DocumentQuota {
  private readonly buckets = new Map<string, { bytes: number; at: number }>();

  constructor(
    private readonly maxPerPost: number,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes `bytes` from the tenant's budget, or throws (and takes nothing). */
  take(tenant: string, bytes: number): void {
    // A post bigger than a whole minute's budget could never be taken: 413, not a 429 to retry forever.
    const cap = Math.min(this.maxPerPost, this.perMinute);
    if (bytes > cap) {
      throw new PayloadTooLargeError(`The documents hold ${bytes} bytes of text; this server takes at most ${cap} per request.`, 'documents');
    }
    const now = this.now();
    const bucket = this.buckets.get(tenant) ?? { bytes: this.perMinute, at: now };
    bucket.bytes = Math.min(this.perMinute, bucket.bytes + ((now - bucket.at) * this.perMinute) / 60_000);
    bucket.at = now;
    if (bytes > bucket.bytes) {
      const waitS = Math.ceil(((bytes - bucket.bytes) * 60) / this.perMinute);
      this.buckets.set(tenant, bucket);
      throw new DocumentRateError(`This tenant may post ${this.perMinute} bytes of documents per minute; retry in ${waitS} s.`, waitS);
    }
    bucket.bytes -= bytes;
    this.buckets.set(tenant, bucket);
  }
}
