import { createServer, connect, type Server, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_SERVER_PRESENT, startRedis, type RedisProcess } from '../../bench/redis-process.js';
import { freePort } from '../../bench/server-process.js';
import type { Engine, EngineStats, Exchange, ReplicaTries } from '../../src/engine/types.js';
import { EngineRestartingError } from '../../src/errors.js';
import type { TextTokenizer } from '../../src/model/tokenizer/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { Replication } from '../../src/sync/index.js';
import { SyncKeys } from '../../src/sync/keys.js';
import { readyStats } from '../helpers/scripted-engine.js';

if (!REDIS_SERVER_PRESENT) console.warn('SKIPPED test/integration/replication.test.ts: redis-server is not installed (.ci/run installs it)');

/**
 * Exactly once, counted: replicas over a real redis-server, each on an engine that records every input its global
 * tries were taught (documents, answers) as a multiset. Every replica must end with every input exactly once, its
 * own included: after plain traffic, after a late start from the snapshot, and after being cut off while its
 * position in a stream was trimmed away.
 */
describe.skipIf(!REDIS_SERVER_PRESENT)('replication exactly once (counted)', () => {
  let redis: RedisProcess;
  const running: Replication[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const r of running) await r.close();
    await redis?.stop();
  });

  function replica(url: string, prefix: string, streamMaxLen = 1000): { engine: RecordingEngine; replication: Replication } {
    const engine = new RecordingEngine();
    const replication = new Replication(
      engine,
      { redisUrl: url, keyPrefix: prefix, streamMaxLen, snapshotIntervalMs: 3_600_000, sessionTurns: 4, sessionTtlSeconds: 60, maxSessions: 100, corpus: [], responses: { bytesPerTenant: 1 << 20, ttlMs: 60_000 } },
      new Registry(),
      createLogger('silent'),
    );
    replication.start();
    running.push(replication);
    return { engine, replication };
  }

  it('applies every input once on every replica, and on a late one from snapshot + stream', async () => {
    const a = replica(redis.url, 'p1');
    const b = replica(redis.url, 'p1');
    await until(() => a.replication.status().connected && b.replication.status().connected);
    for (let i = 0; i < 5; i++) a.engine.answer('t1', i);
    a.engine.document(a.replication, 't1', 'doc one');
    a.engine.document(a.replication, 't2', 'doc two');
    for (let i = 0; i < 3; i++) b.engine.answer('t1', 100 + i);
    b.engine.answer('t2', 200);
    await until(() => a.engine.size() === 11 && b.engine.size() === 11);
    expect(b.engine.sorted()).toEqual(a.engine.sorted());

    // Own answers learnt just before the snapshot: in its tries, maybe not yet behind its cursors.
    for (let i = 0; i < 3; i++) a.engine.answer('t1', 300 + i);
    expect(await a.replication.snapshot()).toBe(true);
    for (let i = 0; i < 2; i++) a.engine.answer('t1', 400 + i);
    b.engine.answer('t2', 500);
    const c = replica(redis.url, 'p1');
    await until(() => a.engine.size() === 17 && b.engine.size() === 17 && c.engine.size() === 17);
    await sleep(300);
    expect(c.replication.status().snapshot_restored).not.toBeNull();
    expect(c.engine.sorted()).toEqual(a.engine.sorted());
    expect(b.engine.sorted()).toEqual(a.engine.sorted());
  });

  it('a replica cut off while its stream position is trimmed away restores the snapshot and ends exact', async () => {
    const proxy = await CuttableProxy.start(redis.port);
    const a = replica(redis.url, 'p2', 20);
    const b = replica(proxy.url, 'p2', 20);
    await until(() => a.replication.status().connected && b.replication.status().connected);
    a.engine.answer('t', 1);
    b.engine.answer('t', 2);
    await until(() => a.engine.size() === 2 && b.engine.size() === 2);

    await proxy.cut();
    await until(() => !b.replication.status().connected);
    b.engine.answer('t', 3);
    b.engine.answer('u', 4);
    for (let i = 0; i < 300; i++) a.engine.answer('t', 1000 + i);
    await until(() => a.replication.status().outbox === 0);
    expect(await a.replication.snapshot()).toBe(true);
    for (let i = 0; i < 5; i++) a.engine.answer('t', 5000 + i);
    expect(await redis.client.xlen('p2:t:t:stream')).toBeLessThan(300);

    await proxy.restore();
    const total = 2 + 2 + 300 + 5;
    await until(() => a.engine.size() === total && b.engine.size() === total, 15_000);
    await sleep(300);
    expect(b.replication.status().snapshot_restored).not.toBeNull();
    expect(b.engine.sorted()).toEqual(a.engine.sorted());
    await proxy.close();
  });

  it('a replica whose worker is replaced catches up from Redis, and its next snapshot misses nothing', async () => {
    const a = replica(redis.url, 'p3');
    const b = replica(redis.url, 'p3');
    await until(() => a.replication.status().connected && b.replication.status().connected);
    for (let i = 0; i < 5; i++) a.engine.answer('t', i);
    b.engine.answer('t', 100);
    b.engine.document(b.replication, 'u', 'doc');
    await until(() => a.engine.size() === 7 && b.engine.size() === 7);

    b.engine.crash();
    // Handed to b's dead worker: they fail there and must be read again, not counted as applied.
    for (let i = 5; i < 10; i++) a.engine.answer('t', i);
    await sleep(500);
    // The new worker holds only the local snapshot file's tries (none here).
    b.engine.restarted();
    await until(() => b.engine.size() === 12);
    await sleep(300);
    expect(b.engine.sorted()).toEqual(a.engine.sorted());

    // b's snapshot stands for everything: a replica starting from it misses nothing and holds nothing twice.
    expect(await b.replication.snapshot()).toBe(true);
    const c = replica(redis.url, 'p3');
    await until(() => c.engine.size() === 12);
    await sleep(300);
    expect(c.replication.status().snapshot_restored).not.toBeNull();
    expect(c.engine.sorted()).toEqual(a.engine.sorted());
  });

  it("a deleted session's turns leave Redis: no replica learns them again", async () => {
    const a = replica(redis.url, 'p4');
    await until(() => a.replication.status().connected);
    a.engine.answer('t', 1, 's1');
    const key = new SyncKeys('p4').session('t', 's1');
    await until(() => a.engine.size() === 1);
    for (let i = 0; i < 100 && (await redis.client.exists(key)) === 0; i++) await sleep(20);
    expect(await redis.client.exists(key)).toBe(1);

    expect(await a.replication.dropSession('t', 's1')).toBe(true);
    expect(await redis.client.exists(key)).toBe(0);
    const b = replica(redis.url, 'p4');
    await until(() => b.replication.status().connected);
    await b.replication.prepareSession('t', 's1');
    expect(b.engine.sessionTurns).toEqual([]);
  });

  it('an engine that refuses the answers applied again after a restore (its worker restarting) costs a log line, not the process', async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      const a = replica(redis.url, 'p5');
      await until(() => a.replication.status().connected);
      a.engine.answer('t', 1);
      await until(() => a.replication.status().outbox === 0);
      expect(await a.replication.snapshot()).toBe(true);
      const proxy = await CuttableProxy.start(redis.port);
      await proxy.cut();
      const b = replica(proxy.url, 'p5');
      // Learnt while Redis is out of reach: applied again on top of the snapshot once it is restored.
      b.engine.answer('t', 2);
      b.engine.refuseExchanges = true;
      await proxy.restore();
      await until(() => b.replication.status().snapshot_restored !== null);
      await sleep(200);
      expect(rejections).toEqual([]);
      await proxy.close();
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });
});

/** Global tries reduced to what matters here: the multiset of inputs taught to them, per tenant. */
class RecordingEngine implements Engine, ReplicaTries {
  readonly models = [{ id: 'm', contextLength: 1024, created: 0, executionProvider: 'cpu' as const }];
  private readonly tries = new Map<string, string[]>();
  private readonly listeners: ((tenant: string, sessionId: string | null, exchange: Exchange) => void)[] = [];
  private readonly restartListeners: (() => void)[] = [];
  /** Turns taught to session tries, as tenant/session. */
  readonly sessionTurns: string[] = [];
  private down = false;
  /** As the real engine does while its worker restarts. */
  refuseExchanges = false;

  /** This replica answered: its tries learn it, replication is told (as the worker's `learned` message does). */
  answer(tenant: string, n: number, sessionId: string | null = null): void {
    const exchange = { prompt: [1, 2], answer: [n % 1000, Math.floor(n / 1000)] };
    this.teach(tenant, `answer ${exchange.answer.join(',')}`);
    for (const l of this.listeners) l(tenant, sessionId, exchange);
  }

  /** The worker died: what is handed to the engine now fails, as the real engine's replies do. */
  crash(): void {
    this.down = true;
  }

  /** A new worker is ready, its tries restored from a local snapshot file (none here). */
  restarted(): void {
    this.tries.clear();
    this.down = false;
    for (const l of this.restartListeners) l();
  }

  /** A document posted to this replica (what ReplicatedEngine does). */
  document(replication: Replication, tenant: string, text: string): void {
    this.addDocuments(tenant, [text]);
    replication.documents(tenant, [text]);
  }

  size(): number {
    return [...this.tries.values()].reduce((n, items) => n + items.length, 0);
  }

  sorted(): string[] {
    return [...this.tries].flatMap(([tenant, items]) => items.map((i) => `${tenant}: ${i}`)).sort();
  }

  tokenizer(): TextTokenizer {
    return TOKENIZER;
  }

  submit(): never {
    throw new Error('not used');
  }

  async addDocuments(tenant: string, texts: string[]): Promise<number> {
    if (this.down) throw new EngineRestartingError('restarting', 1);
    for (const t of texts) this.teach(tenant, `doc ${t}`);
    return texts.length;
  }

  async dropSession(): Promise<boolean> {
    return false;
  }

  stats(): EngineStats {
    return readyStats();
  }

  async close(): Promise<void> {}
  async terminate(): Promise<void> {}

  onLearned(listener: (tenant: string, sessionId: string | null, exchange: Exchange) => void): void {
    this.listeners.push(listener);
  }

  onRestarted(listener: () => void): void {
    this.restartListeners.push(listener);
  }

  async addExchanges(tenant: string, sessionId: string | null, exchanges: Exchange[]): Promise<void> {
    if (this.down || this.refuseExchanges) throw new EngineRestartingError('restarting', 1);
    if (sessionId) {
      this.sessionTurns.push(...exchanges.map(() => `${tenant}/${sessionId}`));
      return;
    }
    for (const e of exchanges) this.teach(tenant, `answer ${e.answer.join(',')}`);
  }

  async exportGlobalTries(): Promise<{ bytes: Uint8Array; tenants: string[] }> {
    return { bytes: new TextEncoder().encode(JSON.stringify(Object.fromEntries(this.tries))), tenants: [...this.tries.keys()] };
  }

  async importGlobalTries(bytes: Uint8Array): Promise<string | null> {
    for (const [tenant, items] of Object.entries(JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string[]>)) this.tries.set(tenant, items);
    return null;
  }

  private teach(tenant: string, item: string): void {
    const items = this.tries.get(tenant) ?? [];
    items.push(item);
    this.tries.set(tenant, items);
  }
}

const TOKENIZER: TextTokenizer = {
  vocabSize: 1000,
  bosTokenId: null,
  eosTokenIds: [0],
  encode: (text) => [...text].map((ch) => ch.charCodeAt(0) % 1000),
  decode: (ids) => String.fromCharCode(...Array.from(ids)),
  renderChat: (messages) => messages.map((m) => m.content).join('\n'),
  chatTemplateAddsBos: false,
  chatTemplateTakesTools: false,
  chatTemplateThinks: false,
  tokenBytes: () => null,
};

/** A TCP relay to Redis that the test can cut (connections dropped, new ones refused) and restore. */
class CuttableProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly port: number,
    private readonly target: number,
  ) {}

  static async start(target: number): Promise<CuttableProxy> {
    const proxy = new CuttableProxy(await freePort(), target);
    await proxy.restore();
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async restore(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  close(): Promise<void> {
    return this.cut();
  }
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
