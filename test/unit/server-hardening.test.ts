import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Metrics } from '../../src/observability/metrics.js';
import { createApp } from '../../src/server/app.js';
import type { Lifecycle } from '../../src/server/deps.js';
import { SCRIPTED_MODEL, ScriptedEngine, type ScriptOptions } from '../helpers/scripted-engine.js';

const KEYS = { auth: { apiKey: null, apiKeys: [{ key: 'sk-acme', tenant: 'acme' }, { key: 'sk-beta', tenant: 'beta' }], adminKey: 'sk-admin' } };

function setup(flags: string[] = [], opts: ScriptOptions = {}, auth = true) {
  const base = loadConfig(['--body-limit-bytes', '65536', ...flags], {});
  const config = auth ? { ...base, ...KEYS } : base;
  const engine = new ScriptedEngine(opts);
  const lifecycle: Lifecycle = { draining: false };
  const metrics = new Metrics(() => engine.stats(), { processMetrics: false, models: () => engine.models });
  const app = createApp({ engine, config, lifecycle, metrics });
  const call = (method: string, path: string, key: string | null, body?: unknown) =>
    app.request(path, {
      method,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    });
  return { engine, app, call, lifecycle, metrics };
}
const chat = (extra: object = {}) => ({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, ...extra });

async function error(res: Response) {
  return ((await res.json()) as { error: { type: string; code: string | null; message: string } }).error;
}

describe('API keys and tenants', () => {
  it('401 invalid_api_key without a key or with a wrong one, OpenAI-shaped', async () => {
    const { call } = setup();
    for (const key of [null, 'sk-wrong-key-123']) {
      const res = await call('POST', '/v1/chat/completions', key, chat());
      expect(res.status).toBe(401);
      expect(await error(res)).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    }
    const wrong = await error(await call('GET', '/v1/models', 'sk-wrong-key-123'));
    expect(wrong.message).toContain('sk-****-123');
    expect(wrong.message).not.toContain('sk-wrong-key-123');
  });

  it("maps each key to its tenant: jobs, documents and sessions are the key's tenant's", async () => {
    const { call, engine } = setup();
    expect((await call('POST', '/v1/chat/completions', 'sk-acme', chat())).status).toBe(200);
    expect((await call('POST', '/v1/chat/completions', 'sk-beta', chat())).status).toBe(200);
    expect(engine.submitted.map((s) => s.tenant)).toEqual(['acme', 'beta']);
    const docs = await call('POST', '/v1/lookahead/documents', 'sk-acme', { documents: ['abc'] });
    expect(await docs.json()).toMatchObject({ tenant: 'acme' });
    // A header cannot pick another tenant any more.
    await call('POST', '/v1/chat/completions', 'sk-beta', chat());
    expect(engine.submitted.at(-1)!.tenant).toBe('beta');
  });

  it('403 for admin routes without the admin key; the admin key may feed any tenant and read stats', async () => {
    const { call, engine } = setup();
    const stats = await call('GET', '/v1/lookahead/stats', 'sk-acme');
    expect(stats.status).toBe(403);
    expect(await error(stats)).toMatchObject({ type: 'permission_error' });
    const other = await call('POST', '/v1/lookahead/documents', 'sk-acme', { documents: ['x'], tenant: 'beta' });
    expect(other.status).toBe(403);
    expect((await call('GET', '/v1/lookahead/stats', 'sk-admin')).status).toBe(200);
    expect((await call('POST', '/v1/lookahead/documents', 'sk-admin', { documents: ['x'], tenant: 'beta' })).status).toBe(200);
    expect(engine.documents.map((d) => d.tenant)).toEqual(['beta']);
  });

  it('auth off: everyone is tenant "default" with admin rights', async () => {
    const { call, engine } = setup([], {}, false);
    expect((await call('POST', '/v1/chat/completions', null, chat())).status).toBe(200);
    expect(engine.submitted[0].tenant).toBe('default');
    expect((await call('GET', '/v1/lookahead/stats', null)).status).toBe(200);
  });

  it('--api-key is the single tenant "default"', async () => {
    const config = loadConfig(['--api-key', 'sk-solo'], {});
    const engine = new ScriptedEngine();
    const app = createApp({ engine, config });
    const res = await app.request('/v1/chat/completions', { method: 'POST', body: JSON.stringify(chat()), headers: { authorization: 'Bearer sk-solo', 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(engine.submitted[0].tenant).toBe('default');
    expect((await app.request('/v1/models')).status).toBe(401);
  });

  it('probes and metrics need no key', async () => {
    const { call } = setup();
    expect((await call('GET', '/health', null)).status).toBe(200);
    const ready = await call('GET', '/ready', null);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { execution_providers: unknown }).execution_providers).toEqual({ scripted: 'cpu' });
    expect((await call('GET', '/metrics', null)).status).toBe(200);
  });
});

describe('limits and overload', () => {
  it('per-tenant job limit: 429 with Retry-After for that tenant only', async () => {
    const { call } = setup(['--max-jobs-per-tenant', '2'], { stepDelayMs: 30 });
    const slow = chat({ max_tokens: 30 });
    const running = [call('POST', '/v1/chat/completions', 'sk-acme', slow), call('POST', '/v1/chat/completions', 'sk-acme', slow)];
    await new Promise((r) => setTimeout(r, 10));
    const third = await call('POST', '/v1/chat/completions', 'sk-acme', slow);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(await error(third)).toMatchObject({ type: 'rate_limit_error', code: 'tenant_concurrency_limit' });
    expect((await call('POST', '/v1/chat/completions', 'sk-beta', slow)).status).toBe(200);
    for (const r of await Promise.all(running)) expect(r.status).toBe(200);
    // Slots come back when jobs end.
    expect((await call('POST', '/v1/chat/completions', 'sk-acme', chat({ n: 2 }))).status).toBe(200);
  });

  it('a generation past the request timeout is aborted and answered 504', async () => {
    const { call, engine } = setup(['--request-timeout-ms', '60'], { stepDelayMs: 20 });
    const res = await call('POST', '/v1/chat/completions', 'sk-acme', chat({ max_tokens: 200 }));
    expect(res.status).toBe(504);
    expect(await error(res)).toMatchObject({ type: 'server_error', code: 'request_timeout' });
    await new Promise((r) => setTimeout(r, 50));
    expect(engine.aborted).toHaveLength(1);
  });

  it('refuses bodies that are not UTF-8 JSON', async () => {
    const { app } = setup([], {}, false);
    const bad = Buffer.concat([Buffer.from('{"model":"scripted","messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]);
    const res = await app.request('/v1/chat/completions', { method: 'POST', body: bad, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(await error(res)).toMatchObject({ code: 'invalid_encoding' });
  });

  it('415 for a POST not declared JSON, with no Content-Type too (what a page sends without a preflight)', async () => {
    const { app, engine } = setup([], {}, false);
    for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/lookahead/documents']) {
      for (const headers of [{ 'content-type': 'application/x-www-form-urlencoded' }, { 'content-type': 'text/plain' }, {}] as Record<string, string>[]) {
        // A Blob with no type: fetch sends no Content-Type at all.
        const res = await app.request(path, { method: 'POST', body: new Blob([JSON.stringify(chat())]), headers });
        expect(res.status).toBe(415);
        expect(await error(res)).toMatchObject({ type: 'invalid_request_error', code: 'invalid_content_type' });
      }
    }
    expect(engine.submitted).toHaveLength(0);
    const json = await app.request('/v1/chat/completions', { method: 'POST', body: JSON.stringify(chat()), headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(json.status).toBe(200);
  });

  it('while draining: 503 with Retry-After for new work, /ready 503, /health still 200', async () => {
    const { call, lifecycle } = setup();
    lifecycle.draining = true;
    const res = await call('POST', '/v1/chat/completions', 'sk-acme', chat());
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await error(res)).toMatchObject({ type: 'server_error', code: 'service_unavailable' });
    expect((await call('GET', '/ready', null)).status).toBe(503);
    expect((await call('GET', '/health', null)).status).toBe(200);
  });
});

describe('/metrics', () => {
  it('counts requests by route and status and speculative tokens with vLLM-like names', async () => {
    const { call } = setup();
    await call('POST', '/v1/chat/completions', 'sk-acme', chat({ max_tokens: 10 }));
    await call('POST', '/v1/chat/completions', null, chat());
    const text = await (await call('GET', '/metrics', null)).text();
    expect(text).toMatch(/lookahead_requests_total\{route="\/v1\/chat\/completions",method="POST",status="200"\} 1/);
    expect(text).toMatch(/lookahead_requests_total\{route="\/v1\/chat\/completions",method="POST",status="401"\} 1/);
    expect(text).toMatch(/lookahead_request_duration_seconds_bucket\{le="\+Inf",route="\/v1\/chat\/completions",method="POST",status="200"\} 1/);
    // The scripted engine: 10 tokens in 4 steps of 4 drafted tokens, 6 accepted.
    expect(text).toMatch(/lookahead_num_drafts\{model="scripted"\} 4/);
    expect(text).toMatch(/lookahead_num_draft_tokens\{model="scripted"\} 16/);
    expect(text).toMatch(/lookahead_num_accepted_tokens\{model="scripted"\} 6/);
    expect(text).toMatch(/lookahead_generation_tokens_total\{model="scripted"\} 10/);
    expect(text).toMatch(/lookahead_queue_depth 0/);
    expect(text).toMatch(/lookahead_running_jobs 0/);
    expect(text).toMatch(/lookahead_model_info\{model="scripted",execution_provider="cpu"\} 1/);
    expect(text).toMatch(/lookahead_trie_nodes\{scope="global"\} 0/);
  });

  it('a streamed request is timed and counted when its stream ends; unknown URLs share one label', async () => {
    const { call, app } = setup([], { stepDelayMs: 5 }, false);
    const res = await call('POST', '/v1/chat/completions', null, chat({ max_tokens: 12, stream: true }));
    await res.text();
    await app.request('/v1/made-up/a1');
    await app.request('/v1/made-up/b2');
    await new Promise((r) => setTimeout(r, 10));
    const text = await (await call('GET', '/metrics', null)).text();
    expect(text).toMatch(/lookahead_generation_tokens_total\{model="scripted"\} 12/);
    expect(text).toMatch(/lookahead_requests_total\{route="unmatched",method="GET",status="404"\} 2/);
  });

  it('every route of the app is labelled with its own pattern, never "unmatched"', async () => {
    const { app, metrics } = setup([], {}, false);
    const routes = app.routes.filter((r) => r.method !== 'ALL');
    for (const r of routes) {
      const path = r.path.replace(/:(\w+)(\{[^}]*\})?/g, 'x');
      await app.request(path, { method: r.method, ...(r.method === 'POST' && { body: '{}', headers: { 'content-type': 'application/json' } }) });
    }
    await new Promise((r) => setTimeout(r, 10));
    const text = await metrics.text();
    expect(text).not.toMatch(/route="unmatched"/);
    for (const label of ['/v1/responses', '/v1/chat/completions', '/v1/models/:id', '/v1/lookahead/sessions/:id', '/health']) {
      expect(text).toContain(`route="${label}"`);
    }
    expect(routes.length).toBeGreaterThanOrEqual(11);
  });
});

describe('requests that can never fit', () => {
  it('more choices than one caller may run at once is a 400, not a 429 an SDK would retry forever', async () => {
    const { call } = setup(['--max-jobs-per-tenant', '2']);
    const res = await call('POST', '/v1/chat/completions', 'sk-acme', chat({ n: 3 }));
    expect(res.status).toBe(400);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(await error(res)).toMatchObject({ type: 'invalid_request_error', code: 'too_many_choices' });
    expect((await call('POST', '/v1/chat/completions', 'sk-acme', chat({ n: 2 }))).status).toBe(200);
  });
});

describe('engine restarting', () => {
  it('/ready says 503 while the engine restarts a failed worker', async () => {
    const { app, engine } = setup();
    const stats = engine.stats.bind(engine);
    engine.stats = () => ({ ...stats(), state: 'restarting' });
    const res = await app.request('/ready');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { status: string }).status).toBe('restarting');
  });
});
