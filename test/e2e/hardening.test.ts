import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/**
 * The real server (real engine, synthetic default model) with auth on, hit by generated bad requests and by a
 * storm of streaming clients that hang up mid-answer.
 */
const KEY = 'sk-fuzz-tenant';
const ADMIN = 'sk-fuzz-admin';
const BODY_LIMIT = 65_536;
const FUZZ_REQUESTS = 600;
const STORM_CLIENTS = 64;
const STORM_ROUNDS = 3;

let server: RealServer;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lookahead-hardening-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, `auth:\n  apiKeys:\n    - { key: ${KEY}, tenant: fuzz }\n  adminKey: ${ADMIN}\n`);
  server = await startRealServer([
    '--config', config, '--context-length', '256', '--max-tokens', '64', '--body-limit-bytes', String(BODY_LIMIT),
    '--max-queued', String(STORM_CLIENTS), '--max-jobs-per-tenant', String(STORM_CLIENTS),
  ]);
});
afterAll(async () => {
  await server?.close();
});

/** mulberry32: the same bad requests on every run, so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface BadRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

/** Fields set to values that can never be valid for them (wrong types, out of range, over limits). */
const BAD_FIELDS: [string, unknown[]][] = [
  ['model', [123, null, '', [], { id: 'x' }, 'no-such-model']],
  ['messages', ['hello', [], [{}], [{ role: 'wizard', content: 'x' }], [{ role: 'user', content: 5 }], [{ role: 'user', content: [{ type: 'image_url' }] }], null, 7]],
  ['max_tokens', [-1, 0, 1e12, '10', 1.5, 1e308, -1e308, 65, true]],
  ['temperature', [-1, 3, 'hot', [], 1e309 === Infinity ? 9e99 : 9]],
  ['n', [0, -3, 1e9, 9, '2', 2.5]],
  ['top_p', [0, 2, -0.5, 'x']],
  ['stop', [[1, 2], ['a', 'b', 'c', 'd', 'e'], 5, [null]]],
  ['stream', ['yes', 1, {}]],
  ['logprobs', ['x', 3]],
  ['top_logprobs', [50, -1, 'x']],
  ['lookahead', [{ decoding_length: 1000 }, { branch_length: 0 }, { layout: 'zigzag' }, 'on', 5]],
  ['seed', [1.5, 'x', {}]],
  ['presence_penalty', [2.5, 'x']],
  ['frequency_penalty', [-2.5, 'x']],
  ['logit_bias', [{ x: 5 }, { '1': 500 }, 'x']],
  ['tools', [[{ type: 'function' }], 'x', [{ type: 'function', function: { name: 'f', parameters: { type: 'objekt' } } }]]],
  ['tool_choice', ['sometimes', { type: 'function', function: { name: 'missing' } }]],
  ['response_format', [{ type: 'xml' }, { type: 'json_schema' }, { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } }, 'x']],
  ['stream_options', ['x', 3]],
  ['user', [5, {}]],
  ['max_completion_tokens', [0, -5, 'x']],
];

function generate(r: () => number, model: string): BadRequest {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const auth = { authorization: `Bearer ${KEY}` };
  const json = { 'content-type': 'application/json', ...auth };
  const good = { model, messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 8 };
  const chat = (body: string | Buffer, headers: Record<string, string> = json): BadRequest => ({ kind: '', method: 'POST', path: '/v1/chat/completions', headers, body });
  const kinds: [string, () => BadRequest][] = [
    ['bad field', () => {
      const [field, values] = pick(BAD_FIELDS);
      const extra = r() < 0.3 ? Object.fromEntries([pick(BAD_FIELDS)].map(([f, v]) => [f, pick(v)])) : {};
      return chat(JSON.stringify({ ...good, ...extra, [field]: pick(values) }));
    }],
    ['random shape', () => chat(JSON.stringify(randomValue(r, 0, true)))],
    ['not an object', () => chat(pick(['[]', '"text"', '42', 'null', 'true', '', ' ', '[{"model":1}]']))],
    ['truncated', () => {
      const text = JSON.stringify({ ...good, messages: [{ role: 'user', content: 'a longer prompt to cut somewhere' }] });
      return chat(text.slice(0, 1 + Math.floor(r() * (text.length - 2))));
    }],
    ['invalid utf-8', () => {
      const bytes = Buffer.from(JSON.stringify({ ...good, messages: [{ role: 'user', content: 'AB' }] }));
      const at = bytes.indexOf('AB');
      bytes[at] = pick([0xff, 0xc0, 0x80, 0xed]);
      bytes[at + 1] = pick([0xfe, 0x41, 0xa0]);
      return chat(bytes);
    }],
    ['content type', () => chat(JSON.stringify(good), { ...auth, 'content-type': pick(['text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'application/x-www-form-urlencoded', 'image/png']) })],
    ['bad auth', () => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const a = pick(['', 'Bearer', 'Bearer ', 'Bearer sk-wrong', `Basic ${Buffer.from('u:p').toString('base64')}`, `bearer ${KEY}x`, KEY, 'Bearer \u00ff']);
      if (a) headers.authorization = a;
      return chat(JSON.stringify(good), headers);
    }],
    ['not admin', () => pick([
      { kind: '', method: 'GET', path: '/v1/lookahead/stats', headers: auth },
      { kind: '', method: 'POST', path: '/v1/lookahead/documents', headers: json, body: JSON.stringify({ documents: ['x'], tenant: 'someone-else' }) },
    ])],
    ['too large', () => chat(JSON.stringify({ ...good, messages: [{ role: 'user', content: 'x'.repeat(BODY_LIMIT + 1) }] }))],
    ['context', () => chat(JSON.stringify({ ...good, messages: [{ role: 'user', content: 'y'.repeat(300 + Math.floor(r() * 3000)) }] }))],
    ['completions', () => ({
      kind: '', method: 'POST', path: '/v1/completions', headers: json,
      body: JSON.stringify({ model, max_tokens: 4, ...pick([{ prompt: [999_999] }, { prompt: [] }, { prompt: [[]] }, { prompt: 5 }, { prompt: 'x', echo: true, stream: true, logprobs: 1 }, { prompt: 'x', best_of: 3 }, { prompt: [-1] }, {}]) }),
    })],
    ['bad url or method', () => pick([
      { kind: '', method: 'GET', path: '/v1/chat/completions', headers: auth },
      { kind: '', method: 'PUT', path: '/v1/completions', headers: json, body: '{}' },
      { kind: '', method: 'POST', path: `/v1/${Math.floor(r() * 1e6)}`, headers: json, body: '{}' },
      { kind: '', method: 'GET', path: '/v1/models/no-such-model', headers: auth },
      { kind: '', method: 'DELETE', path: '/v1/models', headers: auth },
    ])],
  ];
  const [kind, make] = pick(kinds);
  return { ...make(), kind };
}

function randomValue(r: () => number, depth: number, object = false): unknown {
  const choice = object ? 6 : Math.floor(r() * 7);
  switch (choice) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return [0, -1, 1e308, -1e-308, 2 ** 53 + 1, 3.14, -0][Math.floor(r() * 7)];
    case 3: return ['', 'x', '\u0000', '\ud83d\ude00', 'user', 'a'.repeat(100)][Math.floor(r() * 6)];
    case 4:
    case 5: return depth > 2 ? [] : Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const keys = ['model', 'messages', 'role', 'content', 'max_tokens', 'n', 'stream', 'x', 'prompt', 'lookahead'];
      const out: Record<string, unknown> = {};
      const count = Math.floor(r() * 5);
      for (let i = 0; i < count; i++) out[keys[Math.floor(r() * keys.length)]] = depth > 2 ? 1 : randomValue(r, depth + 1);
      // A shape that happens to be valid would not be a bad request: make sure at least the messages are wrong.
      if (depth === 0) out.messages = Array.isArray(out.messages) && out.messages.length === 0 ? [] : 'not a list';
      return out;
    }
  }
}

async function send(req: BadRequest): Promise<{ status: number; type: string | null; contentType: string | null }> {
  const res = await fetch(`${server.url}${req.path}`, { method: req.method, headers: req.headers, ...(req.body !== undefined && { body: req.body }) });
  const text = await res.text();
  let type: string | null = null;
  try {
    type = (JSON.parse(text) as { error?: { type?: unknown } }).error?.type as string ?? null;
  } catch {
    type = null;
  }
  return { status: res.status, type, contentType: res.headers.get('content-type') };
}

async function goodRequest(): Promise<void> {
  const res = await fetch(`${server.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: server.modelId, messages: [{ role: 'user', content: 'Hello there.' }], max_tokens: 12, temperature: 0 }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { message: { content: string } }[]; usage: { completion_tokens: number } };
  expect(body.usage.completion_tokens).toBeGreaterThan(0);
  expect(typeof body.choices[0].message.content).toBe('string');
}

async function drained(): Promise<{ running: number; queued: number }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const s = server.engine.stats();
    if ((s.running === 0 && s.queued === 0) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('fuzz: generated bad requests', () => {
  it(`answers ${FUZZ_REQUESTS} bad requests with 4xx OpenAI errors, and then serves a good one`, async () => {
    const r = rng(20240607);
    const requests = Array.from({ length: FUZZ_REQUESTS }, () => generate(r, server.modelId));
    const outcomes: { req: BadRequest; status: number; type: string | null; contentType: string | null }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < requests.length) {
          const req = requests[next++];
          outcomes.push({ req, ...(await send(req)) });
        }
      }),
    );
    const wrong = outcomes.filter((o) => o.status < 400 || o.status >= 500 || !o.type || !o.contentType?.includes('application/json'));
    const byKind = new Map<string, number>();
    for (const o of outcomes) byKind.set(o.req.kind, (byKind.get(o.req.kind) ?? 0) + 1);
    console.log(`fuzz: ${outcomes.length} bad requests, ${wrong.length} not a 4xx JSON error; by kind ${JSON.stringify(Object.fromEntries(byKind))}`);
    expect(wrong.map((o) => `${o.req.kind} ${o.req.method} ${o.req.path} ${String(o.req.body).slice(0, 120)} -> ${o.status} ${o.type}`)).toEqual([]);
    expect(outcomes).toHaveLength(FUZZ_REQUESTS);
    expect(byKind.size).toBeGreaterThanOrEqual(10);
    expect(await drained()).toMatchObject({ running: 0, queued: 0 });
    await goodRequest();
  });
});

describe('disconnect storm', () => {
  /** One streaming client; `abortAfterMs` (if set) hangs up at that point, possibly before any byte arrived. */
  async function streamingClient(abortAfterMs: number | null): Promise<'done' | 'aborted'> {
    const controller = new AbortController();
    const timer = abortAfterMs === null ? null : setTimeout(() => controller.abort(), abortAfterMs);
    try {
      const res = await fetch(`${server.baseURL}/chat/completions`, {
        method: 'POST',
        signal: controller.signal,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ model: server.modelId, messages: [{ role: 'user', content: 'Tell a long story.' }], max_tokens: 64, stream: true }),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      return 'done';
    } catch (err) {
      if (controller.signal.aborted) return 'aborted';
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  it(`${STORM_CLIENTS} streaming clients, half hanging up at random points: every job ends, the queue drains, memory stays bounded`, async () => {
    const r = rng(7);
    const rss: number[] = [];
    for (let round = 0; round < STORM_ROUNDS; round++) {
      const outcomes = await Promise.all(
        Array.from({ length: STORM_CLIENTS }, (_, i) => streamingClient(i % 2 === 0 ? Math.floor(r() * 400) : null)),
      );
      expect(outcomes.filter((o) => o === 'done').length).toBeGreaterThanOrEqual(STORM_CLIENTS / 2);
      expect(await drained()).toMatchObject({ running: 0, queued: 0 });
      await goodRequest();
      rss.push(process.memoryUsage().rss);
    }
    console.log(`disconnect storm: RSS after each round ${rss.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(', ')}`);
    // A leak of one job's state per aborted client would grow by rounds; allow only allocator noise.
    expect(rss.at(-1)! - rss[0]).toBeLessThan(96 * 2 ** 20);
  });
});
