import { createHash, randomUUID } from 'node:crypto';
import type { Engine, ReplicaTries } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import { SyncMetrics } from '../observability/sync-metrics.js';
import type { Registry } from 'prom-client';
import { Consumer, type AppliedState } from './consumer.js';
import { PROMPT_TAIL, type Entry, type EntryBody } from './entries.js';
import { SyncKeys } from './keys.js';
import { RedisLink } from './link.js';
import { modelTag } from './model-tag.js';
import { Publisher } from './publisher.js';
import { SharedResponseRecords } from './responses.js';
import { SessionTurns } from './sessions.js';
import { readSnapshot, writeSnapshot, type SnapshotInfo } from './snapshots.js';
import { compareStreamIds } from './stream-ids.js';

export interface ReplicationOptions {
  redisUrl: string;
  keyPrefix: string;
  streamMaxLen: number;
  snapshotIntervalMs: number;
  sessionTurns: number;
  sessionTtlSeconds: number;
  maxSessions: number;
  /** The corpus this replica fed tenant "default" at start (already in its tries). */
  corpus: string[];
  /** Stored responses' bounds per tenant, as the local store's. */
  responses: { bytesPerTenant: number; ttlMs: number };
}

/** Own inputs kept while Redis is unreachable, before the oldest are dropped. */
const MAX_WAITING = 50_000;

/** What /ready reports (snake_case, as the rest of the HTTP surface). */
export interface ReplicationStatus {
  connected: boolean;
  replica: string;
  outbox: number;
  applied: number;
  skipped_invalid: number;
  lag_seconds: number | null;
  sessions_fetched: number;
  snapshot_restored: SnapshotInfo | null;
  snapshot_written_at: number | null;
}

/**
 * Replicas sharing each tenant's global trie through Redis Streams, and sessions' turns through Redis lists.
 *
 * Exactly once: an input learnt here (a posted document, a finished answer, the corpus) is applied to the local
 * tries at once, as without Redis, and appended to the tenant's stream tagged with this replica's id; the consumer
 * applies every other replica's entries and skips its own. A replica that starts late restores the last snapshot
 * (written by one replica at a time, see snapshots.ts) and reads each stream after the snapshot's cursor.
 */
export class Replication {
  readonly id = randomUUID();
  private readonly keys: SyncKeys;
  private readonly link: RedisLink;
  private readonly metrics: SyncMetrics;
  private readonly publisher: Publisher;
  private readonly consumer: Consumer;
  private readonly sessions: SessionTurns;
  /** Stored responses, shared by every replica. */
  readonly responses: SharedResponseRecords;
  private readonly state: AppliedState = { cursors: new Map(), corpus: new Map(), skip: new Map(), ownUntil: new Map(), replaced: { at: 0, seq: 0 } };
  private readonly model: string;
  /** False until the first snapshot check, and during a restore: nothing is read or written meanwhile. */
  private bootstrapped = false;
  private everBootstrapped = false;
  private bootstrapping = false;
  /** The engine replaced its worker and this replica has not caught up from Redis since. */
  private workerReplaced = false;
  private restored: SnapshotInfo | null = null;
  private writtenAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly engine: Engine & ReplicaTries,
    private readonly options: ReplicationOptions,
    registry: Registry,
    private readonly log: Logger,
  ) {
    const tok = engine.tokenizer(engine.models[0].id);
    this.model = modelTag(tok);
    this.keys = new SyncKeys(options.keyPrefix);
    this.metrics = new SyncMetrics(registry, () => ({ connected: this.link.connected, outbox: this.publisher.waiting.length }));
    this.link = new RedisLink(options.redisUrl, log, () => void this.onUp());
    this.publisher = new Publisher(
      this.link,
      this.keys,
      this.model,
      { streamMaxLen: options.streamMaxLen, maxWaiting: MAX_WAITING },
      this.metrics,
      log,
      () => this.bootstrapped,
    );
    this.consumer = new Consumer(this.link, this.keys, this.state, engine, this.id, { model: this.model, vocabSize: tok.vocabSize }, this.publisher, this.metrics, log, () => this.bootstrapped);
    this.sessions = new SessionTurns(
      this.link,
      this.keys,
      engine,
      { turns: options.sessionTurns, ttlSeconds: options.sessionTtlSeconds, maxSessions: options.maxSessions },
      tok.vocabSize,
      log,
    );
    this.responses = new SharedResponseRecords(this.link, this.keys, options.responses);
    engine.onLearned((tenant, sessionId, exchange) => {
      this.learn(tenant, { kind: 'answer', prompt: exchange.prompt.slice(-PROMPT_TAIL), answer: exchange.answer });
      if (sessionId) this.sessions.record(tenant, sessionId, exchange);
    });
    engine.onRestarted(() => this.onWorkerReplaced());
    const corpus = new Set<string>();
    for (const text of options.corpus) {
      const hash = corpusHash(text);
      corpus.add(hash);
      this.learn('default', { kind: 'corpus', text, hash });
    }
    if (corpus.size > 0) this.state.corpus.set('default', corpus);
  }

  start(): void {
    this.running = this.consumer.run();
    this.timer = setInterval(() => void this.snapshot(), this.options.snapshotIntervalMs);
    this.timer.unref();
  }

  /** Documents posted to this replica: already applied locally (ReplicatedEngine), now shared. */
  documents(tenant: string, texts: string[]): void {
    for (const text of texts) this.learn(tenant, { kind: 'doc', text });
  }

  prepareSession(tenant: string, sessionId: string): Promise<void> {
    return this.sessions.prepare(tenant, sessionId);
  }

  /** A session deleted on this replica: its turns leave Redis too, so no replica learns them again. */
  dropSession(tenant: string, sessionId: string): Promise<boolean> {
    return this.sessions.drop(tenant, sessionId);
  }

  status(): ReplicationStatus {
    return {
      connected: this.link.connected,
      replica: this.id,
      outbox: this.publisher.waiting.length,
      applied: this.consumer.applied,
      skipped_invalid: this.consumer.skippedInvalid,
      lag_seconds: this.consumer.lastLagSeconds,
      sessions_fetched: this.sessions.fetched,
      snapshot_restored: this.restored,
      snapshot_written_at: this.writtenAt,
    };
  }

  /** Writes what is waiting (briefly, if Redis is there) and disconnects. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.consumer.stop();
    const deadline = Date.now() + 1000;
    while (this.publisher.waiting.length > 0 && this.link.connected && Date.now() < deadline) {
      await this.publisher.flush();
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.link.close();
    await this.running;
  }

  /** One snapshot attempt now (the timer calls this; tests too). Resolves true when this replica wrote one. */
  async snapshot(): Promise<boolean> {
    if (!this.link.connected || !this.bootstrapped) return false;
    try {
      const info = await writeSnapshot({
        link: this.link,
        keys: this.keys,
        engine: this.engine,
        publisher: this.publisher,
        state: this.state,
        model: this.model,
        replica: this.id,
        exclusive: (fn) => this.consumer.exclusive(fn),
        ready: () => this.bootstrapped,
      });
      if (info) this.writtenAt = info.at;
      return info !== null;
    } catch (err) {
      this.log.warn({ component: 'sync', err: (err as Error).message }, 'could not write the trie snapshot to Redis');
      return false;
    }
  }

  private learn(tenant: string, body: EntryBody): void {
    this.publisher.add(tenant, { ...body, origin: this.id, at: Date.now() } as Entry);
  }

  /**
   * Every (re)connection. The first restores the snapshot; a later one too if a stream lost entries after this
   * replica's cursor while it was away (trimmed, or Redis restarted empty) and the snapshot covers that position.
   * Then what waited is written and reading resumes.
   */
  private async onUp(): Promise<void> {
    if (this.bootstrapping) return;
    this.bootstrapping = true;
    this.bootstrapped = false;
    let retryIn = 0;
    try {
      // No batch is applied meanwhile: the cursors must stand for what the tries hold when they are reset.
      await this.consumer.exclusive(async () => {
        if (this.workerReplaced) {
          this.forgetApplied();
          await this.bootstrap([]);
          this.workerReplaced = false;
        } else if (!this.everBootstrapped) {
          await this.bootstrap([]);
        } else {
          const lost = await this.lostPastCursor();
          if (lost.length > 0 && !(await this.bootstrap(lost))) {
            this.log.warn({ component: 'sync', tenants: lost }, 'streams lost entries this replica had not read (trimmed while it was away, or Redis restarted empty) and no snapshot covers them');
          }
        }
      });
      this.everBootstrapped = true;
    } catch (err) {
      this.log.warn({ component: 'sync', err: (err as Error).message }, 'could not read the snapshot from Redis; retrying');
      retryIn = 1000;
    } finally {
      this.bootstrapped = this.everBootstrapped && !this.workerReplaced;
      this.bootstrapping = false;
    }
    // Not done (it failed, or the worker was replaced again meanwhile): once more while connected.
    if (!this.bootstrapped) setTimeout(() => this.link.connected && void this.onUp(), retryIn).unref();
    void this.publisher.flush();
  }

  /**
   * The engine replaced a failed worker: the new one's tries hold only the local snapshot file, not what this replica
   * applied from the streams since, nor its own inputs learnt before. It catches up from Redis as a late replica
   * does — the snapshot, then every stream after its cursors (from the start where it has none), own entries learnt
   * before now included — and meanwhile reads nothing and writes no snapshot of the shrunken tries.
   */
  private onWorkerReplaced(): void {
    this.state.replaced = { at: Date.now(), seq: this.publisher.lastSeq };
    this.sessions.forgetAll();
    this.workerReplaced = true;
    this.bootstrapped = false;
    if (this.link.connected) void this.onUp();
  }

  /** Every stream is read again from its start, or from the snapshot's cursors where one is restored. */
  private forgetApplied(): void {
    const ownCorpus = new Set(this.options.corpus.map(corpusHash));
    for (const tenant of this.state.cursors.keys()) this.state.cursors.set(tenant, '0-0');
    this.state.skip.clear();
    this.state.ownUntil.clear();
    this.state.corpus.clear();
    // The engine feeds its own corpus file to the new worker.
    if (ownCorpus.size > 0) this.state.corpus.set('default', ownCorpus);
  }

  /** Tenants whose stream now starts after this replica's cursor: what lay in between is gone. */
  private async lostPastCursor(): Promise<string[]> {
    const lost: string[] = [];
    for (const [tenant, cursor] of this.state.cursors) {
      if (cursor === '0-0') continue;
      const [first] = await this.link.cmd.xrange(this.keys.stream(tenant), '-', '+', 'COUNT', 1);
      if (first && compareStreamIds(first[0], cursor) > 0) lost.push(tenant);
    }
    return lost;
  }

  /**
   * Restores the snapshot unless it stands before this replica's cursor on one of `mustCover`'s streams.
   * The snapshot replaces this replica's global tries (those of the tenants it holds), so what it learnt and has
   * not written yet (its corpus, inputs learnt while Redis was unreachable) is applied again on top; its own
   * entries already in the streams after the snapshot's cursors are applied from there (ownUntil). Then the
   * consumer reads each stream after the snapshot's cursors.
   */
  private async bootstrap(mustCover: string[]): Promise<boolean> {
    const found = await readSnapshot(this.link, this.keys, this.model, this.log);
    if (!found) return false;
    const { meta } = found;
    // A snapshot older than where this replica stands would take back what it has.
    for (const tenant of mustCover) if (compareStreamIds(meta.cursors[tenant] ?? '0-0', this.state.cursors.get(tenant) ?? '0-0') < 0) return false;
    const replaced = new Set(meta.tenants);
    const heads = new Map<string, string>();
    for (const tenant of replaced) {
      const [last] = await this.link.cmd.xrevrange(this.keys.stream(tenant), '+', '-', 'COUNT', 1);
      if (last) heads.set(tenant, last[0]);
    }
    const refused = await this.engine.importGlobalTries(found.bytes);
    if (refused) {
      this.log.warn({ component: 'sync', reason: refused }, 'the trie snapshot in Redis does not fit this model: ignored');
      return false;
    }
    // Synchronously after the import: everything learnt before it is in `waiting`, nothing learnt after it is.
    const ownCorpus = this.state.corpus.get('default') ?? new Set<string>();
    // The tenants it replaced now stand where the snapshot stands; the others keep their tries and cursors.
    for (const tenant of replaced) {
      this.state.cursors.set(tenant, meta.cursors[tenant] ?? '0-0');
      this.state.skip.set(tenant, new Set(meta.also[tenant] ?? []));
      this.state.corpus.set(tenant, new Set(meta.corpus[tenant] ?? []));
      const head = heads.get(tenant);
      if (head) this.state.ownUntil.set(tenant, head);
    }
    for (const { tenant, entry } of this.publisher.waiting) {
      // Learnt before the worker was replaced: the stream brings it back (AppliedState.replaced).
      if (!replaced.has(tenant) || entry.at < this.state.replaced.at) continue;
      if (entry.kind === 'answer') void this.engine.addExchanges(tenant, null, [{ prompt: entry.prompt, answer: entry.answer }]).catch((err: Error) => this.relearnFailed(err));
      else if (entry.kind === 'doc') void this.engine.addDocuments(tenant, [entry.text]).catch((err: Error) => this.relearnFailed(err));
    }
    if (replaced.has('default')) {
      const inSnapshot = this.state.corpus.get('default')!;
      const missing = this.options.corpus.filter((text) => !inSnapshot.has(corpusHash(text)));
      if (missing.length > 0) void this.engine.addDocuments('default', missing).catch((err: Error) => this.relearnFailed(err));
      for (const hash of ownCorpus) inSnapshot.add(hash);
    }
    this.restored = found.info;
    this.log.info({ component: 'sync', ...found.info }, 'global tries restored from the snapshot in Redis; reading the streams after it');
    return true;
  }

  /** The engine refused to take back an answer or document after a restore (it is restarting): the replica drafts without it. */
  private relearnFailed(err: Error): void {
    this.log.warn({ component: 'sync', err: err.message }, 'an input learnt before the snapshot restore could not be applied again');
  }
}

export function corpusHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
