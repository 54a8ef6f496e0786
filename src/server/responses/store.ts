import { LRUCache } from 'lru-cache';

/** One stored thing (a response or an output item) as the JSON that is kept, under its id. */
export interface StoredRecord {
  key: string;
  json: string;
}

/**
 * Where stored responses live beyond this process, so that any replica continues any conversation (src/sync keeps
 * them in Redis). `put` never waits or throws: a record Redis did not take stays on the replica that made it.
 */
export interface SharedRecords {
  /** The records of one response, kept and dropped together, bounded per tenant by the same bytes and age. */
  put(tenant: string, records: readonly StoredRecord[]): void;
  /** By key, null where unknown (or when Redis is away). */
  get(tenant: string, keys: readonly string[]): Promise<(string | null)[]>;
}

export interface RecordLimits {
  /** Bytes of stored JSON one tenant may hold; past it the least recently used go first. 0 = nothing is kept. */
  bytesPerTenant: number;
  ttlMs: number;
}

/**
 * Stored responses and their output items by key, per tenant: each tenant has its own bound, so one tenant's calls
 * never evict another's records. Records are JSON strings, counted by their UTF-8 bytes. With `shared`, records are
 * written through to it and looked up there when this process does not hold them (another replica made them, or
 * this one restarted); what it finds is kept here too.
 */
export class RecordStore {
  private readonly tenants = new Map<string, LRUCache<string, string>>();

  constructor(
    private readonly limits: RecordLimits,
    private readonly shared?: SharedRecords,
  ) {}

  put(tenant: string, records: readonly StoredRecord[]): void {
    if (this.limits.bytesPerTenant === 0 || records.length === 0) return;
    const local = this.tenant(tenant);
    for (const r of records) local.set(r.key, r.json);
    this.shared?.put(tenant, records);
  }

  async get(tenant: string, keys: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    if (this.limits.bytesPerTenant === 0) return found;
    const local = this.tenant(tenant);
    const missing: string[] = [];
    for (const key of keys) {
      const json = local.get(key);
      if (json === undefined) missing.push(key);
      else found.set(key, json);
    }
    if (missing.length === 0 || !this.shared) return found;
    const fetched = await this.shared.get(tenant, missing);
    missing.forEach((key, i) => {
      const json = fetched[i];
      if (json === null || json === undefined) return;
      found.set(key, json);
      local.set(key, json);
    });
    return found;
  }

  /** Bytes a tenant holds here (for tests and stats). */
  bytes(tenant: string): number {
    return this.tenants.get(tenant)?.calculatedSize ?? 0;
  }

  private tenant(tenant: string): LRUCache<string, string> {
    let cache = this.tenants.get(tenant);
    if (!cache) {
      cache = new LRUCache<string, string>({
        maxSize: this.limits.bytesPerTenant,
        sizeCalculation: (json, key) => Buffer.byteLength(json) + Buffer.byteLength(key),
        ttl: this.limits.ttlMs,
      });
      // Tenants are the configured API keys' (plus "default"): a small, fixed set.
      this.tenants.set(tenant, cache);
    }
    return cache;
  }
}
