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
  /**
   * When the engine last replaced its worker (time, and the publisher's seq then; 0 = never): the new worker's tries
   * lack what was learnt before, so own entries learnt before then are applied from the stream like anyone's (see
   * Replication.onWorkerReplaced).
   */
  replaced: { at: number; seq: number };
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
  /** The batch being applied, or work that must not interleave with one (a snapshot's export, a restore). */
  private turn: Promise<unknown> = Promise.resolve();
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

  /**
   * Runs `fn` once no batch is being applied, and starts none until it is done: the cursors then stand exactly for
   * what the tries hold.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.catch(() => {});
    return run;
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
    const from = new Map(tenants.map((t) => [t, this.state.cursors.get(t)!]));
    const reply = await this.link.reader.xreadBuffer('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...tenants.map((t) => this.keys.stream(t)), ...from.values());
    if (!reply) return;
    if (await this.exclusive(() => this.apply(reply, from))) await sleep(BLOCK_MS);
  }

  /**
   * Applies a read batch, and moves each tenant's cursor past what the engine confirmed it holds: an entry the
   * engine could not take (its worker is being replaced) is read again, never counted as applied. True when one
   * failed.
   */
  private async apply(reply: [Buffer, [Buffer, Buffer[]][]][], from: Map<string, string>): Promise<boolean> {
    // A restore began while this read was blocked: it set the cursors, and the batch is read again after them.
    if (this.stopped || !this.ready()) return false;
    const batches: { tenant: string; ids: string[]; applying: Promise<void>[] }[] = [];
    for (const [key, entries] of reply) {
      const tenant = this.keys.tenantOfStream(key.toString('utf8'));
      if (tenant === null || this.state.cursors.get(tenant) !== from.get(tenant)) continue;
      const batch = { tenant, ids: [] as string[], applying: [] as Promise<void>[] };
      for (const [idBuf, fields] of entries) {
        const id = idBuf.toString('latin1');
        batch.ids.push(id);
        batch.applying.push(this.handle(tenant, id, fields) ?? Promise.resolve());
      }
      batches.push(batch);
    }
    let failed = false;
    for (const { tenant, ids, applying } of batches) {
      const outcomes = await Promise.allSettled(applying);
      const firstFailed = outcomes.findIndex((o) => o.status === 'rejected');
      const done = firstFailed < 0 ? ids.length : firstFailed;
      if (firstFailed >= 0) {
        failed = true;
        const reason = (outcomes[firstFailed] as PromiseRejectedResult).reason as Error;
        this.log.warn({ component: 'sync', tenant, id: ids[firstFailed], err: reason?.message }, 'could not apply a stream entry; reading it again');
      }
      if (done > 0) this.advance(tenant, ids[done - 1]);
    }
    return failed;
  }

  private advance(tenant: string, id: string): void {
    this.state.cursors.set(tenant, id);
    const skip = this.state.skip.get(tenant);
    if (skip) for (const s of skip) if (compareStreamIds(s, id) <= 0) skip.delete(s);
  }

  /** Applies one entry unless it is to be skipped (null); the promise settles once the engine holds it. */
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
    if (entry.origin === this.replicaId) {
      this.publisher.forgetThrough(tenant, id);
      // Own entries are in the tries unless a restore (ownUntil) or a new worker (replaced) wiped them.
      if (entry.at >= this.state.replaced.at && compareStreamIds(id, this.state.ownUntil.get(tenant) ?? '0-0') > 0) {
        this.metrics.count('skipped_own');
        return null;
      }
    }
    if (this.state.skip.get(tenant)?.has(id)) {
      this.metrics.count('skipped_duplicate');
      return null;
    }
    let seen: Set<string> | null = null;
    if (entry.kind === 'corpus') {
      seen = this.state.corpus.get(tenant) ?? new Set<string>();
      this.state.corpus.set(tenant, seen);
      if (seen.has(entry.hash)) {
        this.metrics.count('skipped_duplicate');
        return null;
      }
      seen.add(entry.hash);
    }
    const applying = entry.kind === 'answer'
      ? this.engine.addExchanges(tenant, null, [{ prompt: entry.prompt, answer: entry.answer }])
      : this.engine.addDocuments(tenant, [entry.text]);
    return applying.then(
      () => {
        this.applied++;
        this.metrics.count('applied');
        this.observeLag(entry);
      },
      (err: unknown) => {
        if (entry.kind === 'corpus') seen!.delete(entry.hash);
        throw err;
      },
    );
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
