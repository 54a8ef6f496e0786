import { describe, expect, it } from 'vitest';
import { DocumentRateError, PayloadTooLargeError } from '../../src/errors.js';
import { DocumentQuota } from '../../src/server/document-quota.js';

describe('DocumentQuota', () => {
  it('refuses a post over the size cap (413) and past the per-minute budget (429 with the wait), per tenant', () => {
    let now = 0;
    const quota = new DocumentQuota(1000, 1200, () => now);
    expect(() => quota.take('a', 1001)).toThrow(PayloadTooLargeError);
    quota.take('a', 1000);
    const err = (() => {
      try {
        quota.take('a', 500);
      } catch (e) {
        return e as DocumentRateError;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(DocumentRateError);
    // 300 bytes are missing at 20 bytes per second.
    expect(err!.retryAfterSeconds).toBe(15);
    // Another tenant has its own budget.
    quota.take('b', 1000);
    now = 15_000;
    quota.take('a', 500);
  });

  it('a post bigger than a whole minute of budget is a 413, never a 429 to retry forever', () => {
    const quota = new DocumentQuota(10_000, 1000);
    expect(() => quota.take('a', 2000)).toThrow(PayloadTooLargeError);
  });
});
