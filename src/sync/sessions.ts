import { LRUCache } from 'lru-cache';
import type { Engine, Exchange, ReplicaTries } from '../engine/types.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { bufferToIds, idsToBuffer } from './entries.js';
import type { SyncKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { withTimeout } from './timeout.js';

/** A session's prompts are stored up to this many tokens (their tail): turns stay small, the bound stays honest. */
const PROMPT_KEEP = 1024;
/** A request never waits longer than this for its session's earlier turns; without them it drafts from less. */
const FETCH_TIMEOUT_MS = 250;

/**
 * Sessions across replicas. Every turn this replica finishes is appended to the session's list in Redis (the last
 * `turns`, expiring after the session TTL). A session this replica has not served (it was routed elsewhere
 * before, or this replica restarted) gets its earlier turns from that list before its first job here.
 */
export class SessionTurns {
  private readonly known: LRUCache<string, true>;
  fetched = 0;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: SyncKeys,
    private readonly engine: Engine & ReplicaTries,
    private readonly limits: { turns: number; ttlSeconds: number; maxSessions: number },
    private readonly vocabSize: number,
    private readonly log: Logger,
  ) {
    this.known = new LRUCache({ max: Math.max(1, limits.maxSessions), ttl: limits.ttlSeconds * 1000 });
  }

  record(tenant: string, sessionId: string, exchange: Exchange): void {
    this.known.set(this.localKey(tenant, sessionId), true);
    if (!this.link.connected) return;
    const key = this.keys.session(tenant, sessionId);
    void this.link.cmd
      .multi()
      .rpush(key, encodeTurn(exchange))
      .ltrim(key, -this.limits.turns, -1)
      .expire(key, this.limits.ttlSeconds)
      .exec()
      .catch(() => {
        // Redis went away: this turn stays local; the session is still served here.
      });
  }

  /** Before a session's job: teach this replica the session's earlier turns if it has not seen it. Never throws. */
  async prepare(tenant: string, sessionId: string): Promise<void> {
    const local = this.localKey(tenant, sessionId);
    if (this.known.has(local)) return;
    this.known.set(local, true);
    if (!this.link.connected) return;
    try {
      const raw = await withTimeout(this.link.cmd.lrangeBuffer(this.keys.session(tenant, sessionId), 0, -1), FETCH_TIMEOUT_MS);
      const turns = raw.flatMap((b) => decodeTurn(b, this.vocabSize) ?? []);
      if (turns.length < raw.length) this.log.warn({ component: 'sync', tenant, dropped: raw.length - turns.length }, 'skipped malformed session turns');
      if (turns.length === 0) return;
      await this.engine.addExchanges(tenant, sessionId, turns);
      this.fetched++;
    } catch {
      // Slow or gone: the request drafts without the earlier turns rather than wait or fail.
    }
  }

  /** The session was deleted: its turns leave Redis, so neither this replica nor another learns them again. */
  async drop(tenant: string, sessionId: string): Promise<boolean> {
    if (!this.link.connected) {
      throw new UnavailableError("Redis is unreachable, so the session's turns shared with other replicas cannot be deleted; retry shortly.", 2);
    }
    const removed = await this.link.cmd.del(this.keys.session(tenant, sessionId));
    this.known.delete(this.localKey(tenant, sessionId));
    return removed > 0;
  }

  /** The engine's session tries were lost (its worker was replaced): every session fetches its turns again. */
  forgetAll(): void {
    this.known.clear();
  }

  private localKey(tenant: string, sessionId: string): string {
    return `${tenant}\u0000${sessionId}`;
  }
}

/** [prompt length, prompt tail..., answer...] as int32. */
function encodeTurn({ prompt, answer }: Exchange): Buffer {
  const tail = prompt.slice(-PROMPT_KEEP);
  return idsToBuffer([tail.length, ...tail, ...answer]);
}

function decodeTurn(bytes: Buffer, vocabSize: number): Exchange | null {
  if (bytes.length < 4 || bytes.length % 4 !== 0) return null;
  const length = bytes.readInt32LE(0);
  try {
    const ids = bufferToIds(bytes.subarray(4), 'turn', vocabSize);
    if (length < 0 || length > ids.length) return null;
    return { prompt: ids.slice(0, length), answer: ids.slice(length) };
  } catch {
    return null;
  }
}
