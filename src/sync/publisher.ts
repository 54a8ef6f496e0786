import type { Logger } from '../observability/logger.js';
import type { SyncMetrics } from '../observability/sync-metrics.js';
import { encodeEntry, type Entry } from './entries.js';
import type { SyncKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { compareStreamIds } from './stream-ids.js';

export interface Outgoing {
  /** Order in which this replica learnt its own inputs (local, gapless). */
  seq: number;
  tenant: string;
  entry: Entry;
}

/** An own entry written to a stream, kept until the snapshot writer no longer needs its id. */
export interface Written {
  seq: number;
  tenant: string;
  kind: Entry['kind'];
  id: string;
}

const BATCH = 64;

/** SADD + XADD as one step: of the replicas loading one corpus, the first publishes each document, the others skip it. */
const PUBLISH_CORPUS = `if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false`;

/**
 * This replica's own global-trie inputs on their way to the tenant streams. They were applied locally already;
 * while Redis is away they wait here (bounded: the oldest go first, with one log line an outage) and are written
 * once it is back, so other replicas still learn them.
 */
export class Publisher {
  private seq = 0;
  private readonly queue: Outgoing[] = [];
  /** Own entries written whose ids may still matter to a snapshot (see Replication.writeSnapshot). */
  readonly written: Written[] = [];
  /** While a snapshot is being taken, `written` is not trimmed. */
  holding = false;
  private flushing = false;
  private droppedThisOutage = false;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: SyncKeys,
    private readonly model: string,
    private readonly limits: { streamMaxLen: number; maxWaiting: number },
    private readonly metrics: SyncMetrics,
    private readonly log: Logger,
    /** False until the replica has bootstrapped from Redis: nothing is written before. */
    private readonly canWrite: () => boolean,
  ) {}

  get lastSeq(): number {
    return this.seq;
  }

  /** Every own input up to this seq has been written (or dropped): none is still waiting. */
  get doneSeq(): number {
    return this.queue.length > 0 ? this.queue[0].seq - 1 : this.seq;
  }

  get waiting(): readonly Outgoing[] {
    return this.queue;
  }

  add(tenant: string, entry: Entry): void {
    this.queue.push({ seq: ++this.seq, tenant, entry });
    if (this.queue.length > this.limits.maxWaiting) {
      this.queue.shift();
      this.metrics.count('dropped');
      if (!this.droppedThisOutage) {
        this.droppedThisOutage = true;
        this.log.warn({ component: 'sync', max: this.limits.maxWaiting }, 'sync outbox full: the oldest unwritten inputs are dropped (other replicas will not learn them)');
      }
    }
    void this.flush();
  }

  /** Own entries of `tenant` up to `id` have come back through the stream: no snapshot will need their ids. */
  forgetThrough(tenant: string, id: string): void {
    if (this.holding) return;
    let w = 0;
    for (const r of this.written) if (r.tenant !== tenant || compareStreamIds(r.id, id) > 0) this.written[w++] = r;
    this.written.length = w;
  }

  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0 && this.link.connected && this.canWrite()) {
        const batch = this.queue.slice(0, BATCH);
        const pipe = this.link.cmd.pipeline();
        pipe.sadd(this.keys.tenants, ...new Set(batch.map((o) => o.tenant)));
        for (const { tenant, entry } of batch) {
          const fields = encodeEntry(entry, this.model);
          if (entry.kind === 'corpus') pipe.eval(PUBLISH_CORPUS, 2, this.keys.corpus(tenant), this.keys.stream(tenant), entry.hash, this.limits.streamMaxLen, ...fields);
          else pipe.xadd(this.keys.stream(tenant), 'MAXLEN', '~', this.limits.streamMaxLen, '*', ...fields);
        }
        const results = (await pipe.exec()) ?? [];
        const done = new Set<Outgoing>();
        batch.forEach((o, i) => {
          const [err, id] = results[i + 1] ?? [new Error('no reply')];
          if (err) return;
          done.add(o);
          if (typeof id === 'string') {
            this.written.push({ seq: o.seq, tenant: o.tenant, kind: o.entry.kind, id });
            this.metrics.count('published');
          }
        });
        if (done.size === 0) break;
        this.droppedThisOutage = false;
        for (let i = this.queue.length - 1; i >= 0; i--) if (done.has(this.queue[i])) this.queue.splice(i, 1);
      }
    } catch {
      // Redis went away mid-write: what was not confirmed stays queued for the next connection.
    } finally {
      this.flushing = false;
    }
  }
}
