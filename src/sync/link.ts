import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';

/** Reconnect delays: 100 ms doubling to 5 s, forever (a replica never gives up on Redis, nor waits for it). */
function backoff(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt - 1, 6), 5000);
}

/**
 * The two connections a replica holds: `cmd` for writes and reads, `reader` for the blocking stream read. Commands
 * never queue while Redis is away (they fail at once and the caller keeps serving from local tries); the link
 * reconnects with backoff, logs each loss and return once, and calls `onUp` every time both connections are back.
 */
export class RedisLink {
  readonly cmd: Redis;
  readonly reader: Redis;
  private up = false;
  private everUp = false;
  private complained = false;

  constructor(
    url: string,
    private readonly log: Logger,
    private readonly onUp: () => void,
  ) {
    const options: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      retryStrategy: backoff,
      connectionName: 'lookahead-proxy',
    };
    this.cmd = new Redis(url, options);
    this.reader = new Redis(url, options);
    for (const client of [this.cmd, this.reader]) {
      client.on('ready', () => this.update());
      client.on('close', () => this.update());
      client.on('error', (err: Error) => this.complain(err));
    }
  }

  get connected(): boolean {
    return this.cmd.status === 'ready' && this.reader.status === 'ready';
  }

  /** Resolves once connected, or after `ms` (whichever first). */
  async waitUp(ms: number): Promise<void> {
    if (this.connected) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.cmd.off('ready', ready);
        this.reader.off('ready', ready);
        resolve();
      };
      // Both connections: one of them ready is not connected yet.
      const ready = () => this.connected && done();
      const timer = setTimeout(done, ms);
      this.cmd.on('ready', ready);
      this.reader.on('ready', ready);
    });
  }

  async close(): Promise<void> {
    for (const client of [this.cmd, this.reader]) client.disconnect(false);
  }

  private update(): void {
    const now = this.connected;
    if (now === this.up) return;
    this.up = now;
    if (now) {
      this.log.info({ component: 'sync' }, this.everUp ? 'Redis is back: catching up' : 'connected to Redis: replicating tries');
      this.everUp = true;
      this.complained = false;
      this.onUp();
    } else {
      this.complain(new Error('connection closed'));
    }
  }

  /** Once per outage (or once for a Redis that was never reachable), however many retries fail. */
  private complain(err: Error): void {
    if (this.complained || this.connected) return;
    this.complained = true;
    const what = this.everUp ? 'lost Redis' : 'cannot reach Redis';
    this.log.warn({ component: 'sync', err: err.message }, `${what}: serving with local tries, reconnecting with backoff`);
  }
}
