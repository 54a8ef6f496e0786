import type { Engine, ReplicaTries } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { SyncMetrics } from '../observability/sync-metrics.js';
import { decodeEntry, EntryError, type Entry, type EntryContext } from './entries.js';
import type { SyncKeys } from './keys.js';
import type { RedisLink } from './link.js';
import type { Publisher } from './publisher.js';
import { compareStreamIds } from './stream-ids.js';

/** What the consumer has applied, per tenant: shared with the snapshot writer, replaced by a snapshot restore. */
export interface AppliedState {
  /** Last stream id applied (or skipped) per tenant. */
  cursors: Map<string, string>;
  /** Corpus document hashes in this replica's tries, per tenant: corpus entries are applied once by hash. */
  corpus: Map<string, Set<string>>;
  /** Ids the restored snapshot already holds although they lie after its cursor (its writer's own entries). */
  skip: Map<string, Set<string>>;
  /**
   * Per tenant, the stream's last id when a snapshot was restored: this replica's own entries up to it were wiped
   * with its tries and are applied from the stream like anyone's; its own entries after it never left its tries.
   */
  ownUntil: Map<string, string>;
}

/** How often a connected consumer looks again whether the replica may read (a restore is running). */
const READY_POLL_MS = 20;
const BLOCK_MS = 200;
const COUNT = 256;

/**
 * Reads every tenant's stream after this replica's cursor and applies each entry once: own entries were applied
 * when they were learnt and are skipped (unless a restore wiped them, see ownUntil), entries a restored snapshot
 * holds are skipped, corpus documents are applied once by hash, and anything malformed or written for another
 * model is skipped with a log line.
 */
export class Consumer {
  private stopped = false;
  applied = 0;
  skippedInvalid = 0;
  /** Seconds from the last applied remote input being learnt to it being in this replica's trie. */
  lastLagSeconds: number | null = null;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: SyncKeys,
    private readonly state: AppliedState,
    private readonly engine: Engine & ReplicaTries,
    private readonly replicaId: string,
    private readonly context: EntryContext,
    private readonly publisher: Publisher,
    private readonly metrics: SyncMetrics,
    private readonly log: Logger,
    private readonly ready: () => boolean,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.link.connected) {
        await this.link.waitUp(BLOCK_MS);
        if (!this.link.connected) await sleep(BLOCK_MS);
        continue;
      }
      if (!this.ready()) {
        // Connected but a snapshot restore is under way: a real wait, since awaiting the already-resolved waitUp
        // in a loop never yields to the event loop, and then the restore's own replies never arrive.
        await sleep(READY_POLL_MS);
        continue;
      }
      try {
        await this.readOnce();
      } catch {
        // Redis went away during the read; the cursors hold, the next connection resumes from them.
        if (!this.stopped) await sleep(BLOCK_MS);
      }
    }
  }

  private async readOnce(): Promise<void> {
    for (const tenant of await this.link.cmd.smembers(this.keys.tenants)) {
      if (!this.state.cursors.has(tenant)) this.state.cursors.set(tenant, '0-0');
    }
    const tenants = [...this.state.cursors.keys()];
    if (tenants.length === 0) {
      await sleep(BLOCK_MS);
      return;
    }
    const ids = tenants.map((t) => this.state.cursors.get(t)!);
    const reply = await this.link.reader.xreadBuffer('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...tenants.map((t) => this.keys.stream(t)), ...ids);
    // A restore began while this read was blocked: it sets the cursors, this batch is read again after it.
    if (!reply || this.stopped || !this.ready()) return;
    const pending: Promise<void>[] = [];
    for (const [key, entries] of reply) {
      const tenant = this.keys.tenantOfStream(key.toString('utf8'));
      if (tenant === null) continue;
      for (const [idBuf, fields] of entries) {
        const id = idBuf.toString('latin1');
        const applying = this.handle(tenant, id, fields);
        // The cursor moves as the entry is handed to the engine (not when it is in): a snapshot asked for now is
        // taken after it in the worker's order, so the snapshot's cursors never hold an entry twice or miss one.
        this.state.cursors.set(tenant, id);
        if (applying) pending.push(applying);
      }
    }
    await Promise.all(pending);
  }

  private handle(tenant: string, id: string, fields: Buffer[]): Promise<void> | null {
    let entry: Entry;
    try {
      entry = decodeEntry(fields, this.context);
    } catch (err) {
      if (!(err instanceof EntryError)) throw err;
      this.skippedInvalid++;
      this.metrics.count('skipped_invalid');
      this.log.warn({ component: 'sync', tenant, id, reason: err.message }, 'skipped a stream entry');
      return null;
    }
    if (entry.origin === this.replicaId && compareStreamIds(id, this.state.ownUntil.get(tenant) ?? '0-0') > 0) {
      this.metrics.count('skipped_own');
      this.publisher.forgetThrough(tenant, id);
      return null;
    }
    if (this.state.skip.get(tenant)?.delete(id)) {
      this.metrics.count('skipped_duplicate');
      return null;
    }
    if (entry.kind === 'corpus') {
      const seen = this.state.corpus.get(tenant) ?? new Set<string>();
      this.state.corpus.set(tenant, seen);
      if (seen.has(entry.hash)) {
        this.metrics.count('skipped_duplicate');
        return null;
      }
      seen.add(entry.hash);
    }
    this.applied++;
    this.metrics.count('applied');
    if (entry.kind !== 'answer') {
      const doc = entry;
      return this.engine.addDocuments(tenant, [doc.text]).then(() => this.observeLag(doc));
    }
    const learnt = entry;
    return this.engine.addExchanges(tenant, null, [{ prompt: learnt.prompt, answer: learnt.answer }]).then(() => this.observeLag(learnt));
  }

  private observeLag(entry: Entry): void {
    const seconds = (Date.now() - entry.at) / 1000;
    this.lastLagSeconds = seconds;
    this.metrics.observeLag(entry.kind, seconds);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
