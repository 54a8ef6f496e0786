import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../../bench/server-process.js';
import { SHARED_DATA } from '../helpers/paths.js';
import { REDIS_SERVER_PRESENT, startRedis, type RedisProcess } from '../../bench/redis-process.js';

/**
 * Replicas sharing tries through a real redis-server: two (and later three) real server processes of a real
 * trained model, each tenant its own key so every case starts from empty tries.
 */
const MODEL_DIR = join(SHARED_DATA, 'models/chat-llama-5m');
const DEV = join(SHARED_DATA, 'datasets/rag-eval/dev.jsonl');
const present = existsSync(`${MODEL_DIR}/config.json`) && existsSync(DEV);
if (!present) console.warn(`SKIPPED test/e2e/replicas.test.ts: ${MODEL_DIR} or ${DEV} is absent`);
if (!REDIS_SERVER_PRESENT) console.warn('SKIPPED test/e2e/replicas.test.ts: redis-server is not installed (.ci/run installs it)');

const TENANTS = ['docs', 'other', 'base', 'cold', 'alone', 'warm', 'late', 'outage', 'sess'] as const;
type Tenant = (typeof TENANTS)[number];
const ADMIN = 'sk-admin';
const key = (t: Tenant) => `sk-${t}`;

interface Message {
  role: string;
  content: string;
}
interface Answer {
  text: string;
  completion: number;
  accepted: number;
  steps: number;
}

const QUESTION = 'Tell me a story about a little dog.';
const STARTUP_MS = 240_000;
const user = (content: string): Message[] => [{ role: 'user', content }];

// Up to three model servers at once: generous bounds, so a loaded machine makes the file slow, not red.
describe.skipIf(!present || !REDIS_SERVER_PRESENT)('replicas sharing tries through Redis', { timeout: 300_000 }, () => {
  let redis: RedisProcess;
  let a: SpawnedServer;
  let b: SpawnedServer;
  let dir: string;
  let serverArgs: string[];

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'lookahead-replicas-'));
    const config = join(dir, 'config.yaml');
    const keys = TENANTS.map((t) => `    - { key: ${key(t)}, tenant: ${t} }`).join('\n');
    writeFileSync(config, `auth:\n  adminKey: ${ADMIN}\n  apiKeys:\n${keys}\n`);
    serverArgs = ['--config', config, '--model-id', 'chat-llama-5m', '--threads', '1', '--redis-url', redis.url, '--sync-snapshot-ms', '500', '--sync-session-turns', '3'];
    [a, b] = await Promise.all([0, 1].map(() => spawnServer({ model: MODEL_DIR, extraArgs: serverArgs, startupTimeoutMs: STARTUP_MS })));
    await Promise.all([a, b].map((s) => until(async () => (await ready(s)).sync.connected, 30_000)));
  }, 2 * STARTUP_MS);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a document posted to A is drafted from on B within 1 s, for its tenant only, with unchanged output', async () => {
    const baseline = await ask(b, 'base', [{ role: 'user', content: QUESTION }]);
    expect(baseline.completion).toBeGreaterThan(16);
    const posted = Date.now();
    await postDocument(a, 'docs', [baseline.text]);
    await sleep(1000 - (Date.now() - posted));
    const onB = await ask(b, 'docs', [{ role: 'user', content: QUESTION }]);
    const otherTenant = await ask(b, 'other', [{ role: 'user', content: QUESTION }]);
    // A tenant without the document, asked now: how well drafts are sized and ranked is learnt per model, across
    // tenants (from onB's accepted copies too), so the cold baseline above is no reference for a later request.
    const cold = await ask(b, 'cold', [{ role: 'user', content: QUESTION }]);
    const plain = await ask(b, 'docs', [{ role: 'user', content: QUESTION }], false);
    console.log(`replicas: accepted on B baseline ${baseline.accepted}/${baseline.completion}, with A's document ${onB.accepted}/${onB.completion}, other tenant ${otherTenant.accepted}/${otherTenant.completion}, tenant without it asked after ${cold.accepted}/${cold.completion}`);
    expect(onB.text).toBe(baseline.text);
    expect(plain.text).toBe(baseline.text);
    expect(otherTenant.text).toBe(baseline.text);
    expect(onB.accepted).toBeGreaterThan(onB.completion / 2);
    expect(otherTenant.accepted).toBeLessThanOrEqual(cold.accepted + 2);
  });

  it("answers on A raise B's tokens per step on held-out prompts (warm-up on A, measured on B)", async () => {
    const prompts = readFileSync(DEV, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { messages: Message[] }).messages);
    const warmUp = prompts.filter((_, i) => i % 2 === 0).slice(0, 30);
    const heldOut = prompts.filter((_, i) => i % 2 === 1).slice(0, 8);
    const alone: Answer[] = [];
    for (const p of heldOut) alone.push(await ask(b, 'alone', p));
    const before = (await ready(b)).sync.applied;
    for (const p of warmUp) await ask(a, 'warm', p);
    await until(async () => (await ready(b)).sync.applied >= before + warmUp.length, 30_000);
    const warm: Answer[] = [];
    for (const p of heldOut) warm.push(await ask(b, 'warm', p));
    const perStep = (xs: Answer[]) => xs.reduce((n, x) => n + x.completion, 0) / xs.reduce((n, x) => n + x.steps, 0);
    console.log(`replicas: tokens per step on B over ${heldOut.length} held-out prompts: alone ${perStep(alone).toFixed(3)}, after A's ${warmUp.length} answers ${perStep(warm).toFixed(3)}`);
    expect(warm.map((x) => x.text)).toEqual(alone.map((x) => x.text));
    expect(perStep(warm)).toBeGreaterThan(perStep(alone) * 1.1);
  });

  it('skips malformed and foreign stream entries with a log line, and keeps serving', async () => {
    const before = await Promise.all([a, b].map(async (s) => (await ready(s)).sync.skipped_invalid));
    const stream = 'lookahead:t:docs:stream';
    await redis.client.xadd(stream, '*', 'x', 'y');
    await redis.client.xadd(stream, '*', 'v', '1', 'm', 'some-other-model', 'o', 'elsewhere', 'k', 'doc', 't', '1', 'text', 'not for us');
    await redis.client.xadd(stream, '*', 'v', '2', 'k', 'answer');
    await until(async () => (await Promise.all([a, b].map(async (s, i) => (await ready(s)).sync.skipped_invalid >= before[i] + 3))).every(Boolean), 30_000);
    for (const s of [a, b]) expect(s.stderr()).toContain('skipped a stream entry');
    expect((await ask(b, 'docs', user(QUESTION))).completion).toBeGreaterThan(0);
  });

  it("a session's earlier turns on A reach B when the session moves there (bounded, expiring)", async () => {
    const stats = async () => ((await (await fetch(`${b.baseUrl}/lookahead/stats`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { trie_nodes: { sessions: number } }).trie_nodes.sessions;
    await ask(a, 'sess', user('Tell me a story about a brave knight and a dragon.'), true, 's1');
    const list = 'lookahead:t:sess:session:s1';
    expect(await redis.client.llen(list)).toBe(1);
    expect(await redis.client.ttl(list)).toBeGreaterThan(0);
    const fetched = (await ready(b)).sync.sessions_fetched;
    const n0 = await stats();
    await ask(b, 'sess', user('What did the cat eat?'), true, 's1');
    const n1 = await stats();
    await ask(b, 'sess', user('What did the cat eat?'), true, 's2');
    const n2 = await stats();
    expect((await ready(b)).sync.sessions_fetched).toBe(fetched + 1);
    // s1 on B holds A's turn besides its own; s2 only its own.
    expect(n1 - n0).toBeGreaterThan(n2 - n1);
    for (const q of ['one', 'two', 'three', 'four']) await ask(a, 'sess', user(`Tell me about number ${q}.`), true, 's3');
    expect(await redis.client.llen('lookahead:t:sess:session:s3')).toBe(3);
  });

  it('a replica started late catches up from the snapshot in Redis plus the stream after it', async () => {
    const [story1, story2] = [await ask(b, 'base', user('Tell me a story about a red ball.')), await ask(b, 'base', user('Tell me a story about a big tree.'))];
    await postDocument(a, 'late', [story1.text]);
    const stream = 'lookahead:t:late:stream';
    const [[first]] = await redis.client.xrange(stream, '-', '+');
    await until(async () => {
      const meta = JSON.parse((await redis.client.get('lookahead:snapshot:meta')) ?? '{}') as { cursors?: Record<string, string> };
      return meta.cursors?.late !== undefined && compareIds(meta.cursors.late, first) >= 0;
    }, 30_000);
    // No replica writes a newer snapshot now: the second document lives only in the stream, the first only in the
    // snapshot once the stream is trimmed past it.
    await until(async () => (await redis.client.set('lookahead:snapshot:lock', 'test', 'PX', 300_000, 'NX')) === 'OK', 30_000);
    await postDocument(a, 'late', [story2.text]);
    await until(async () => (await redis.client.xlen(stream)) === 2, 30_000);
    const [, [second]] = await redis.client.xrange(stream, '-', '+');
    await redis.client.xtrim(stream, 'MINID', second);
    const c = await spawnServer({ model: MODEL_DIR, extraArgs: serverArgs, startupTimeoutMs: STARTUP_MS });
    try {
      await until(async () => (await ready(c)).sync.applied >= 1, 30_000);
      const status = (await ready(c)).sync;
      expect(status.snapshot_restored).not.toBeNull();
      // Exactly once: the one entry after the snapshot, nothing the snapshot already held.
      expect(status.applied).toBe(1);
      const [late1, late2] = [await ask(c, 'late', user('Tell me a story about a red ball.')), await ask(c, 'late', user('Tell me a story about a big tree.'))];
      console.log(`replicas: late replica accepted ${late1.accepted}/${late1.completion} (snapshot) and ${late2.accepted}/${late2.completion} (stream)`);
      expect(late1.text).toBe(story1.text);
      expect(late2.text).toBe(story2.text);
      expect(late1.accepted).toBeGreaterThan(late1.completion / 2);
      expect(late2.accepted).toBeGreaterThan(late2.completion / 2);
    } finally {
      await c.stop();
      await redis.client.del('lookahead:snapshot:lock');
    }
  });

  it('Redis killed mid-run: both replicas keep answering, one more starts without it, all catch up when it is back', async () => {
    const [story3, story4] = [await ask(b, 'base', user('Tell me a story about a funny frog.')), await ask(b, 'base', user('Tell me a story about a shiny star.'))];
    await redis.kill();
    await until(async () => !(await ready(a)).sync.connected && !(await ready(b)).sync.connected, 30_000);
    for (const s of [a, b]) {
      expect((await ready(s)).status).toBe('ready');
      expect((await ask(s, 'other', user(QUESTION))).completion).toBeGreaterThan(0);
      expect(await (await fetch(`${s.baseUrl.replace(/\/v1$/, '')}/metrics`)).text()).toMatch(/^lookahead_sync_connected 0$/m);
    }
    await postDocument(a, 'outage', [story3.text]);
    expect((await ready(a)).sync.outbox).toBeGreaterThan(0);
    // A replica starting while Redis is down starts and serves all the same.
    const c = await spawnServer({ model: MODEL_DIR, extraArgs: serverArgs, startupTimeoutMs: STARTUP_MS });
    try {
      expect((await ready(c)).sync.connected).toBe(false);
      expect((await ask(c, 'other', user(QUESTION))).completion).toBeGreaterThan(0);
      await redis.restart();
      await until(async () => (await Promise.all([a, b, c].map(async (s) => (await ready(s)).sync.connected))).every(Boolean) && (await ready(a)).sync.outbox === 0, 30_000);
      await sleep(1000);
      const onC = await ask(c, 'outage', user('Tell me a story about a funny frog.'));
      expect(onC.accepted).toBeGreaterThan(onC.completion / 2);
    } finally {
      await c.stop();
    }
    const onB = await ask(b, 'outage', user('Tell me a story about a funny frog.'));
    await postDocument(b, 'outage', [story4.text]);
    await sleep(1000);
    const onA = await ask(a, 'outage', user('Tell me a story about a shiny star.'));
    console.log(`replicas: after the outage B accepted ${onB.accepted}/${onB.completion} from A's document, A ${onA.accepted}/${onA.completion} from B's`);
    expect(onB.accepted).toBeGreaterThan(onB.completion / 2);
    expect(onA.accepted).toBeGreaterThan(onA.completion / 2);
    for (const s of [a, b]) expect(s.stderr().match(/lost Redis/g)?.length).toBe(1);
  });
});

async function ask(server: SpawnedServer, tenant: Tenant, messages: Message[], lookahead = true, session?: string): Promise<Answer> {
  const res = await fetch(`${server.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key(tenant)}`, ...(session && { 'x-session-id': session }) },
    body: JSON.stringify({ model: 'chat-llama-5m', messages, max_tokens: 64, temperature: 0, lookahead: { enabled: lookahead } }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as {
    choices: { message: { content: string } }[];
    usage: { completion_tokens: number };
    lookahead: { steps: number; accepted_tokens: number };
  };
  return {
    text: body.choices[0].message.content,
    completion: body.usage.completion_tokens,
    accepted: body.lookahead.accepted_tokens,
    steps: body.lookahead.steps,
  };
}

async function postDocument(server: SpawnedServer, tenant: Tenant, documents: string[]): Promise<void> {
  const res = await fetch(`${server.baseUrl}/lookahead/documents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key(tenant)}` },
    body: JSON.stringify({ documents }),
  });
  expect(res.status).toBe(200);
}

interface SyncStatus {
  connected: boolean;
  outbox: number;
  applied: number;
  skipped_invalid: number;
  sessions_fetched: number;
  snapshot_restored: { at: number } | null;
}

async function ready(server: SpawnedServer): Promise<{ status: string; sync: SyncStatus }> {
  const res = await fetch(`${server.baseUrl.replace(/\/v1$/, '')}/ready`);
  return (await res.json()) as { status: string; sync: SyncStatus };
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(50);
  }
}

function compareIds(x: string, y: string): number {
  const [xm, xs] = x.split('-').map(BigInt);
  const [ym, ys] = y.split('-').map(BigInt);
  return xm !== ym ? (xm < ym ? -1 : 1) : xs === ys ? 0 : xs < ys ? -1 : 1;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
