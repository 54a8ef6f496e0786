/**
 * Every Redis key replication uses, under one prefix. Tenant names and session ids are URI-encoded, so no name can
 * reach into another tenant's keys (a tenant called `a:s:x` stays one segment).
 */
export class SyncKeys {
  constructor(private readonly prefix: string) {}

  /** SET of tenant names that have a stream: what a consumer reads. */
  get tenants(): string {
    return `${this.prefix}:tenants`;
  }

  /** The global tries of every tenant, as of the cursors in `snapshotMeta`. */
  get snapshot(): string {
    return `${this.prefix}:snapshot`;
  }

  get snapshotMeta(): string {
    return `${this.prefix}:snapshot:meta`;
  }

  /** Held (SET NX PX) by the one replica writing the snapshot. */
  get snapshotLock(): string {
    return `${this.prefix}:snapshot:lock`;
  }

  /** The tenant's global-trie inputs: documents, corpus, answers. */
  stream(tenant: string): string {
    return `${this.tenant(tenant)}:stream`;
  }

  /** SET of corpus document hashes already in the tenant's stream: replicas loading one corpus publish it once. */
  corpus(tenant: string): string {
    return `${this.tenant(tenant)}:corpus`;
  }

  /** LIST of a session's latest turns (bounded, expiring). */
  session(tenant: string, sessionId: string): string {
    return `${this.tenant(tenant)}:session:${encodeURIComponent(sessionId)}`;
  }

  /** A stored response or output item of the tenant (its key in the server's record store). */
  record(tenant: string, key: string): string {
    return `${this.tenant(tenant)}:rec:${encodeURIComponent(key)}`;
  }

  /** ZSET of the tenant's stored record groups by time written, and the bytes they hold: the tenant's byte bound. */
  recordIndex(tenant: string): string {
    return `${this.tenant(tenant)}:recs`;
  }

  recordBytes(tenant: string): string {
    return `${this.tenant(tenant)}:recs:bytes`;
  }

  /** The tenant a stream key belongs to, or null for a key that is not one of ours. */
  tenantOfStream(key: string): string | null {
    const head = `${this.prefix}:t:`;
    if (!key.startsWith(head) || !key.endsWith(':stream')) return null;
    try {
      return decodeURIComponent(key.slice(head.length, -':stream'.length));
    } catch {
      return null;
    }
  }

  private tenant(tenant: string): string {
    return `${this.prefix}:t:${encodeURIComponent(tenant)}`;
  }
}
