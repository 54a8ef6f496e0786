import { z } from 'zod';
import type { ReplicaTries } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { AppliedState } from './consumer.js';
import type { SyncKeys } from './keys.js';
import type { RedisLink } from './link.js';
import type { Publisher } from './publisher.js';
import { compareStreamIds } from './stream-ids.js';

/** The writer holds the lock this long at most (it is released as soon as the snapshot is written). */
const LOCK_MS = 30_000;
/** How long the writer waits for its own inputs to be in the streams before giving this snapshot up. */
const FLUSH_WAIT_MS = 5_000;

const metaSchema = z.object({
  v: z.literal(1),
  model: z.string(),
  at: z.number(),
  by: z.string(),
  /** Per tenant: the snapshot holds every entry of its stream up to this id... */
  cursors: z.record(z.string(), z.string().regex(/^\d+-\d+$/)),
  /** ...and these later ones too (its writer's own inputs, written after the cursor was read). */
  also: z.record(z.string(), z.array(z.string().regex(/^\d+-\d+$/))),
  /** Corpus document hashes it holds, per tenant. */
  corpus: z.record(z.string(), z.array(z.string())),
  /** The tenants whose tries it holds: restoring it replaces exactly these. */
  tenants: z.array(z.string()),
});
export type SnapshotMeta = z.infer<typeof metaSchema>;

export interface SnapshotInfo {
  at: number;
  by: string;
  bytes: number;
}

/** Compare-and-delete: a writer whose lock expired never releases the next writer's. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface SnapshotWriter {
  link: RedisLink;
  keys: SyncKeys;
  engine: ReplicaTries;
  publisher: Publisher;
  state: AppliedState;
  model: string;
  replica: string;
  /** Runs its argument while the consumer applies nothing (Consumer.exclusive). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** False while the replica is restoring or catching up: no snapshot then. */
  ready(): boolean;
}

/**
 * Writes this replica's global tries to Redis with the stream positions they stand for, if no other replica is
 * writing one. The tries hold: every remote entry up to the cursors (read and exported while the consumer applies
 * nothing, so the cursors stand exactly for what was applied), and this replica's own inputs learnt before the
 * export (those the stream has after the cursors are listed in `also`, so a restoring replica skips them) — except
 * those learnt before its worker was last replaced, which the stream brings back. Null when another replica holds
 * the lock or this one could not finish.
 */
export async function writeSnapshot(w: SnapshotWriter): Promise<SnapshotInfo | null> {
  const { link, keys, publisher } = w;
  if ((await link.cmd.set(keys.snapshotLock, w.replica, 'PX', LOCK_MS, 'NX')) !== 'OK') return null;
  publisher.holding = true;
  try {
    const taken = await w.exclusive(async () => {
      if (!w.ready()) return null;
      const cursors = Object.fromEntries(w.state.cursors);
      const corpus = Object.fromEntries([...w.state.corpus].map(([tenant, hashes]) => [tenant, [...hashes]]));
      // Documents are applied locally before they are queued; answers are queued when the worker reports them.
      const documentsCut = publisher.lastSeq;
      const tries = await w.engine.exportGlobalTries();
      return { cursors, corpus, documentsCut, answersCut: publisher.lastSeq, ...tries };
    });
    if (!taken) return null;
    const { cursors, corpus, documentsCut, answersCut, bytes, tenants } = taken;
    const deadline = Date.now() + FLUSH_WAIT_MS;
    while (publisher.doneSeq < answersCut) {
      if (Date.now() > deadline || !link.connected) return null;
      await publisher.flush();
      await new Promise((r) => setTimeout(r, 20));
    }
    const also: Record<string, string[]> = {};
    for (const own of publisher.written) {
      if (own.seq > (own.kind === 'answer' ? answersCut : documentsCut) || own.seq <= w.state.replaced.seq) continue;
      if (compareStreamIds(own.id, cursors[own.tenant] ?? '0-0') <= 0) continue;
      (also[own.tenant] ??= []).push(own.id);
    }
    const meta: SnapshotMeta = { v: 1, model: w.model, at: Date.now(), by: w.replica, cursors, also, corpus, tenants };
    await link.cmd.multi().set(keys.snapshot, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).set(keys.snapshotMeta, JSON.stringify(meta)).exec();
    return { at: meta.at, by: meta.by, bytes: bytes.byteLength };
  } finally {
    publisher.holding = false;
    await link.cmd.eval(RELEASE, 1, keys.snapshotLock, w.replica).catch(() => {});
  }
}

/** The snapshot in Redis, if there is one written for this model; anything else is logged and ignored. */
export async function readSnapshot(
  link: RedisLink,
  keys: SyncKeys,
  model: string,
  log: Logger,
): Promise<{ bytes: Uint8Array; meta: SnapshotMeta; info: SnapshotInfo } | null> {
  const [bytes, rawMeta] = await link.cmd.mgetBuffer(keys.snapshot, keys.snapshotMeta);
  if (!bytes || !rawMeta) return null;
  let meta: SnapshotMeta;
  try {
    meta = metaSchema.parse(JSON.parse(rawMeta.toString('utf8')));
  } catch {
    log.warn({ component: 'sync', key: keys.snapshotMeta }, 'the trie snapshot in Redis has malformed metadata: ignored');
    return null;
  }
  if (meta.model !== model) {
    log.warn({ component: 'sync', snapshotModel: meta.model, model }, 'the trie snapshot in Redis was written for another model: ignored');
    return null;
  }
  // A copy of just these bytes: the worker gets it by structured clone, and a pooled Buffer would take its pool along.
  return { bytes: new Uint8Array(bytes), meta, info: { at: meta.at, by: meta.by, bytes: bytes.length } };
}
