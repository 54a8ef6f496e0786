import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { UnavailableError } from '../../src/errors.js';
import { createApp } from '../../src/server/app.js';
import type { Upstream } from '../../src/server/upstream.js';
import { SCRIPTED_MODEL, ScriptedEngine, type ScriptOptions } from '../helpers/scripted-engine.js';

const config = loadConfig(['--body-limit-bytes', '65536'], {});

function setup(opts: ScriptOptions = {}, upstream?: Upstream) {
  const engine = new ScriptedEngine(opts);
  const app = createApp({ engine, config, upstream });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    app.request(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers }, signal });
  return { engine, app, post };
}
const chat = (extra: object = {}) => ({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'hi' }], ...extra });

/** Parses an SSE body into its data payloads. */
async function events(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6))
    .map((d) => (d === '[DONE]' ? '[DONE]' : JSON.parse(d)));
}

async function expectError(res: Response, status: number, param?: string | null, code?: string | null) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(typeof body.error.message).toBe('string');
  expect(body.error.type).toBeTruthy();
  if (param !== undefined) expect(body.error.param).toBe(param);
  if (code !== undefined) expect(body.error.code).toBe(code);
  return body.error;
}

describe('POST /v1/chat/completions', () => {
  it('answers in the OpenAI shape with usage and a lookahead block', async () => {
    const { post, engine } = setup();
    const res = await post('/v1/chat/completions', chat({ max_tokens: 10, temperature: 0, top_k: 5, lookahead: { layout: 'one', decoding_length: 4 } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    const body = (await res.json()) as any;
    expect(body.object).toBe('chat.completion');
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.choices).toEqual([{ index: 0, message: { role: 'assistant', content: 'hello worl', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'length' }]);
    expect(body.usage).toMatchObject({ prompt_tokens: engine.submitted[0].promptIds.length, completion_tokens: 10, total_tokens: engine.submitted[0].promptIds.length + 10 });
    // The scripted engine's 4 steps drafted 16 tokens and kept 6 (10 tokens = 4 bonus + 6 accepted).
    expect(body.lookahead).toMatchObject({ steps: 4, draft_tokens: 16, accepted_tokens: 6 });
    // No `prediction` was sent: OpenAI's prediction fields count nothing, whatever the tries drafted.
    expect(body.usage.completion_tokens_details).toMatchObject({ accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 });
    const spec = engine.submitted[0];
    expect(Buffer.from(spec.promptIds).toString()).toBe('user: hi\nassistant: ');
    expect(spec.sampling).toEqual({ temperature: 0, topP: 1, topK: 5, repetitionPenalty: 1, seed: null });
    expect(spec.lookahead).toEqual({ enabled: true, decodingLength: 4, branchLength: 12, layout: 'one' });
  });

  it('takes the smaller of max_tokens and max_completion_tokens, and fills the context when neither is given', async () => {
    const { post, engine } = setup({ contextLength: 100 });
    await post('/v1/chat/completions', chat({ max_tokens: 9, max_completion_tokens: 7 }));
    await post('/v1/chat/completions', chat());
    expect(engine.submitted[0].maxTokens).toBe(7);
    expect(engine.submitted[1].maxTokens).toBe(100 - engine.submitted[1].promptIds.length);
  });

  it('passes chat_template_kwargs to the chat template', async () => {
    const { post, engine } = setup();
    await post('/v1/chat/completions', chat({ max_tokens: 1, chat_template_kwargs: { enable_thinking: false } }));
    await post('/v1/chat/completions', chat({ max_tokens: 1, chat_template_kwargs: null }));
    expect(engine.submitted.map((s) => Buffer.from(s.promptIds).toString())).toEqual(['user: hi\n{"enable_thinking":false}\nassistant: ', 'user: hi\nassistant: ']);
  });

  it('resolves the session id from header, then prompt_cache_key, then user', async () => {
    const { post, engine } = setup();
    await post('/v1/chat/completions', chat({ max_tokens: 1, prompt_cache_key: 'pck', user: 'u' }), { 'x-session-id': 'hdr' });
    await post('/v1/chat/completions', chat({ max_tokens: 1, prompt_cache_key: 'pck', user: 'u' }));
    await post('/v1/chat/completions', chat({ max_tokens: 1, user: 'u' }));
    await post('/v1/chat/completions', chat({ max_tokens: 1 }));
    expect(engine.submitted.map((s) => s.sessionId)).toEqual(['hdr', 'pck', 'u', undefined]);
  });

  it('runs n jobs with consecutive seeds', async () => {
    const { post, engine } = setup();
    const body = (await (await post('/v1/chat/completions', chat({ n: 2, seed: 7, max_tokens: 5 }))).json()) as any;
    expect(body.choices.map((c: any) => c.index)).toEqual([0, 1]);
    expect(engine.submitted.map((s) => s.sampling.seed)).toEqual([7, 8]);
    expect(body.usage.completion_tokens).toBe(10);
    expect(body.usage.prompt_tokens).toBe(engine.submitted[0].promptIds.length);
  });

  it('joins text parts, tokenizes a prediction and reports accepted/rejected draft tokens', async () => {
    const { post, engine } = setup();
    const res = await post('/v1/chat/completions', chat({
      messages: [{ role: 'system', content: [{ type: 'text', text: 'be ' }, { type: 'text', text: 'brief' }] }, { role: 'user', content: 'x' }],
      max_tokens: 5,
      prediction: { type: 'content', content: 'hellZ' },
    }));
    const body = (await res.json()) as any;
    expect(Buffer.from(engine.submitted[0].promptIds).toString()).toContain('system: be brief\n');
    expect(engine.submitted[0].predictionIds).toEqual([...Buffer.from('hellZ')]);
    expect(body.usage.completion_tokens_details).toMatchObject({
      accepted_prediction_tokens: body.lookahead.accepted_tokens,
      rejected_prediction_tokens: body.lookahead.draft_tokens - body.lookahead.accepted_tokens,
    });
    expect(body.lookahead.accepted_tokens).toBeGreaterThan(0);
  });

  it('streams OpenAI chunks: role first, same id, usage only on the last, then [DONE]', async () => {
    const { post } = setup();
    const res = await post('/v1/chat/completions', chat({ stream: true, stream_options: { include_usage: true }, max_tokens: 7 }));
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const evs = await events(res);
    expect(evs.at(-1)).toBe('[DONE]');
    const chunks = evs.slice(0, -1) as any[];
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const usageChunk = chunks.at(-1);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage.completion_tokens).toBe(7);
    expect(usageChunk.lookahead.steps).toBe(3);
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
    const finish = chunks.at(-2);
    expect(finish.choices[0]).toMatchObject({ delta: {}, finish_reason: 'length' });
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('hello w');
  });

  it('streams without usage fields when include_usage is off, and with logprobs when asked', async () => {
    const { post } = setup();
    const chunks = (await events(await post('/v1/chat/completions', chat({ stream: true, max_tokens: 3, logprobs: true, top_logprobs: 2 })))).slice(0, -1) as any[];
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    const lp = chunks[1].choices[0].logprobs.content;
    expect(lp).toHaveLength(3);
    expect(lp[0]).toMatchObject({ token: 'h', logprob: -0.5, bytes: [104] });
    expect(lp[0].top_logprobs).toHaveLength(2);
  });

  it('passes stop strings to the engine and reports finish_reason stop', async () => {
    // The double cuts stops within one step only; the engine's matcher handles stops across steps.
    const { post, engine } = setup({ tokensPerStep: 8 });
    const body = (await (await post('/v1/chat/completions', chat({ stop: ['lo w', 'zzz'], max_tokens: 50 }))).json()) as any;
    expect(engine.submitted[0].stop).toEqual(['lo w', 'zzz']);
    expect(body.choices[0]).toMatchObject({ message: { content: 'hel' }, finish_reason: 'stop' });
  });

  it('sends a mid-stream failure as an error data line', async () => {
    const { post } = setup({ failAfterFirstStep: new Error('worker exploded') });
    const evs = (await events(await post('/v1/chat/completions', chat({ stream: true, max_tokens: 20 })))) as any[];
    const last = evs.at(-1);
    expect(last.error).toMatchObject({ type: 'server_error' });
    expect(last.error.message).not.toContain('exploded');
    expect(evs).not.toContain('[DONE]');
  });

  it('aborts the job when the client cancels the stream', async () => {
    const { post, engine } = setup({ stepDelayMs: 20 });
    const res = await post('/v1/chat/completions', chat({ stream: true, max_tokens: 200 }));
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await new Promise((r) => setTimeout(r, 100));
    expect(engine.submitted[0].signal!.aborted).toBe(true);
    expect(engine.aborted).toHaveLength(1);
  });

  it('streamed n > 1 under backpressure: the writer of every choice is woken when the client reads again', async () => {
    const engine = new ScriptedEngine({ contextLength: 8192, tokensPerStep: 1, script: () => 'x'.repeat(400) });
    // A writer nobody wakes waits for the request timeout's abort.
    const app = createApp({ engine, config: loadConfig(['--request-timeout-ms', '15000'], {}) });
    const res = await app.request('/v1/chat/completions', { method: 'POST', body: JSON.stringify(chat({ stream: true, n: 4, max_tokens: 400 })), headers: { 'content-type': 'application/json' } });
    // Nobody reads while the four choices fill the stream's buffer (1,600 chunks), so all four writers wait.
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    const reader = res.body!.getReader();
    let body = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) body += Buffer.from(r.value).toString();
    expect(performance.now() - started).toBeLessThan(5000);
    const evs = (await events(new Response(body))) as any[];
    expect(evs.at(-1)).toBe('[DONE]');
    const finished = evs.filter((e) => e.choices?.[0]?.finish_reason).map((e) => e.choices[0].index);
    expect(finished.sort()).toEqual([0, 1, 2, 3]);
  });
});

describe('request validation', () => {
  const cases: [string, unknown, number, string | null, string?][] = [
    ['malformed JSON', '{"model": ', 400, null],
    ['a non-object body', '[1,2]', 400, null],
    ['wrong types', { model: SCRIPTED_MODEL, messages: 'hi' }, 400, 'messages'],
    ['empty messages', chat({ messages: [] }), 400, 'messages'],
    ['an unknown role', chat({ messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages[0].role'],
    ['n=0', chat({ n: 0 }), 400, 'n'],
    ['n above the limit', chat({ n: 9 }), 400, 'n'],
    ['max_tokens=-1', chat({ max_tokens: -1 }), 400, 'max_tokens'],
    ['max_tokens above the limit', chat({ max_tokens: 5000 }), 400, 'max_tokens'],
    ['temperature=5', chat({ temperature: 5 }), 400, 'temperature'],
    ['five stop strings', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop'],
    ['an image part', chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'image_url', image_url: { url: 'x' } }] }] }), 400, 'messages[0].content[1]'],
    ['top_logprobs=21', chat({ logprobs: true, top_logprobs: 21 }), 400, 'top_logprobs'],
    ['top_logprobs without logprobs', chat({ top_logprobs: 2 }), 400, 'top_logprobs'],
    ['presence_penalty=3', chat({ presence_penalty: 3 }), 400, 'presence_penalty'],
    ['a logit_bias key that is no token id', chat({ logit_bias: { hello: 5 } }), 400, 'logit_bias'],
    ['a logit_bias value past 100', chat({ logit_bias: { '5': 101 } }), 400, 'logit_bias'],
    ['an unknown response_format type', chat({ response_format: { type: 'xml' } }), 400, 'response_format.type', 'invalid_value'],
    ['a json_schema response_format without a name', chat({ response_format: { type: 'json_schema', json_schema: { schema: {} } } }), 400, 'response_format.json_schema.name'],
    ['an invalid JSON schema', chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'strnig' } } } } } }), 400, 'response_format.json_schema.schema', 'invalid_json_schema'],
    ['an unsupported schema feature', chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'array', uniqueItems: true } } } }), 400, 'response_format.json_schema.schema', 'unsupported_schema_feature'],
    ['a schema pattern the grammar engine refuses', chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '[a-' } } } }), 400, 'response_format.json_schema.schema', 'invalid_json_schema'],
    ['chat_template_kwargs that is not an object', chat({ chat_template_kwargs: 'enable_thinking' }), 400, 'chat_template_kwargs'],
    ['a bad lookahead layout', chat({ lookahead: { layout: 'zigzag' } }), 400, 'lookahead.layout'],
    ['a prompt longer than the context', chat({ messages: [{ role: 'user', content: 'x'.repeat(600) }] }), 400, 'messages', 'context_length_exceeded'],
    ['prompt + max_tokens over the context', chat({ max_tokens: 500 }), 400, 'messages', 'context_length_exceeded'],
    ['an unknown model', chat({ model: 'nope' }), 404, null, 'model_not_found'],
  ];
  for (const [name, body, status, param, code] of cases) {
    it(`rejects ${name} with ${status}, then serves the next request`, async () => {
      const { post, engine } = setup();
      await expectError(await post('/v1/chat/completions', body), status, param, code);
      expect(engine.submitted).toHaveLength(0);
      expect((await post('/v1/chat/completions', chat({ max_tokens: 2 }))).status).toBe(200);
    });
  }

  it('ignores unknown fields', async () => {
    const { post } = setup();
    expect((await post('/v1/chat/completions', chat({ max_tokens: 2, frobnicate: { a: 1 }, metadata: { x: 'y' } }))).status).toBe(200);
  });

  it('answers an oversized body with 413', async () => {
    const { post } = setup();
    await expectError(await post('/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x'.repeat(70_000) }] })), 413, null, 'request_too_large');
  });

  it('answers a full queue with 429 and Retry-After', async () => {
    const { post } = setup({ capacity: 0 });
    const res = await post('/v1/chat/completions', chat({ max_tokens: 2 }));
    expect(res.headers.get('retry-after')).toBe('3');
    await expectError(res, 429, null, 'queue_full');
  });

  it('hides internal failures behind a 500 with the request id', async () => {
    const { post, engine } = setup();
    engine.submit = () => {
      throw new TypeError('secret internals at /src/foo.ts:12');
    };
    const res = await post('/v1/chat/completions', chat({ max_tokens: 2 }), { 'x-request-id': 'req_test' });
    const error = await expectError(res, 500, null);
    expect(error.message).toContain('req_test');
    expect(error.message).not.toContain('secret');
  });

  it('answers unknown URLs with a JSON 404', async () => {
    const { app } = setup();
    await expectError(await app.request('/v1/nothing'), 404);
  });
});

describe('POST /v1/completions', () => {
  it('answers text_completion choices for several prompts, with logprobs', async () => {
    const { post, engine } = setup();
    const body = (await (await post('/v1/completions', { model: SCRIPTED_MODEL, prompt: ['ab', 'cde'], max_tokens: 4, logprobs: 1 })).json()) as any;
    expect(body.object).toBe('text_completion');
    expect(body.id).toMatch(/^cmpl-/);
    expect(body.choices.map((c: any) => [c.index, c.text, c.finish_reason])).toEqual([[0, 'hell', 'length'], [1, 'hell', 'length']]);
    expect(body.choices[0].logprobs).toMatchObject({ tokens: ['h', 'e', 'l', 'l'], token_logprobs: [-0.5, -0.5, -0.5, -0.5], text_offset: [0, 1, 2, 3] });
    expect(body.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 });
    expect(engine.submitted.map((s) => s.promptIds.length)).toEqual([2, 3]);
  });

  it('accepts token-id prompts, defaults max_tokens to 16 and streams the same shape', async () => {
    const { post, engine } = setup();
    const evs = (await events(await post('/v1/completions', { model: SCRIPTED_MODEL, prompt: [104, 105], stream: true }))) as any[];
    expect(engine.submitted[0]).toMatchObject({ promptIds: [104, 105], maxTokens: 16 });
    expect(evs.at(-1)).toBe('[DONE]');
    const chunks = evs.slice(0, -1);
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe('hello world, thi');
    expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
  });

  it('rejects out-of-vocabulary ids and a streamed echo with logprobs', async () => {
    const { post } = setup();
    await expectError(await post('/v1/completions', { model: SCRIPTED_MODEL, prompt: [1, 999] }), 400, 'prompt');
    await expectError(await post('/v1/completions', { model: SCRIPTED_MODEL, prompt: 'x', echo: true, stream: true, logprobs: 1 }), 400, 'echo');
  });

  it('refuses an empty prompt on a tokenizer without BOS: nothing to condition on, a 400 naming prompt', async () => {
    const { post, engine } = setup();
    for (const prompt of ['', []]) {
      const error = await expectError(await post('/v1/completions', { model: SCRIPTED_MODEL, prompt, max_tokens: 4 }), 400, 'prompt');
      expect(error.type).toBe('invalid_request_error');
      expect(error.code).not.toBe('context_length_exceeded');
    }
    expect(engine.submitted).toEqual([]);
  });
});

describe('models, health and lookahead admin routes', () => {
  it('lists and retrieves local models', async () => {
    const { app } = setup();
    expect(await (await app.request('/v1/models')).json()).toEqual({ object: 'list', data: [{ id: SCRIPTED_MODEL, object: 'model', created: 1_700_000_000, owned_by: 'lookahead-proxy', context_length: 512, max_model_len: 512 }] });
    expect(((await (await app.request(`/v1/models/${SCRIPTED_MODEL}`)).json()) as any).id).toBe(SCRIPTED_MODEL);
    await expectError(await app.request('/v1/models/other'), 404, null, 'model_not_found');
    expect(await (await app.request('/health')).json()).toEqual({ status: 'ok', models: [SCRIPTED_MODEL] });
  });

  it('feeds documents, reports stats and drops sessions', async () => {
    const { app, post, engine } = setup();
    const res = await post('/v1/lookahead/documents', { documents: ['abc', { text: 'de' }], tenant: 'default' });
    expect(await res.json()).toMatchObject({ tenant: 'default', documents: 2, tokens: 5 });
    expect(engine.documents).toEqual([{ tenant: 'default', texts: ['abc', 'de'] }]);
    // With auth off everyone is admin: the tenant field must not create tenants out of thin air.
    await expectError(await post('/v1/lookahead/documents', { documents: ['x'], tenant: 'invented' }), 400, 'tenant', 'unknown_tenant');
    await expectError(await post('/v1/lookahead/documents', { documents: [] }), 400, 'documents');
    expect(await (await app.request('/v1/lookahead/stats')).json()).toMatchObject({ running: 0, queued: 0, totals: { jobs: 0 } });
    expect(await (await app.request('/v1/lookahead/sessions/s1', { method: 'DELETE' })).json()).toMatchObject({ id: 's1', deleted: true });
  });

  it("deleting a session with replicas deletes its shared turns too, and fails whole when they cannot be", async () => {
    const dropped: string[] = [];
    let reachable = true;
    const replication = {
      prepareSession: async () => {},
      status: () => ({}),
      dropSession: async (tenant: string, id: string) => {
        if (!reachable) throw new UnavailableError('Redis is unreachable', 2);
        dropped.push(`${tenant}/${id}`);
        return true;
      },
      responses: { put: () => {}, get: async (_tenant: string, keys: readonly string[]) => keys.map(() => null) },
    };
    const app = createApp({ engine: new ScriptedEngine(), config, replication });
    expect((await app.request('/v1/lookahead/sessions/s1', { method: 'DELETE' })).status).toBe(200);
    expect(dropped).toEqual(['default/s1']);
    reachable = false;
    const res = await app.request('/v1/lookahead/sessions/s2', { method: 'DELETE' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
  });
});

describe('upstream passthrough (routing)', () => {
  function fakeUpstream(models: () => Promise<any[]>): Upstream & { calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      listModels: models,
      async forward(request, path, body) {
        calls.push(`${request.method} ${path} ${body ?? ''}`);
        return new Response(JSON.stringify({ error: { message: 'upstream says no', type: 'invalid_request_error', param: null, code: null } }), { status: 418 });
      },
    };
  }

  it('forwards non-local models untouched and keeps the upstream status', async () => {
    const upstream = fakeUpstream(async () => []);
    const { post, engine } = setup({}, upstream);
    const raw = '{"model":"gpt-x","messages":[{"role":"user","content":"hi"}],"weird":true}';
    const res = await post('/v1/chat/completions', raw);
    expect(res.status).toBe(418);
    expect(upstream.calls).toEqual([`POST chat/completions ${raw}`]);
    expect(engine.submitted).toHaveLength(0);
  });

  it('lists upstream models after local ones, and only local ones when upstream fails', async () => {
    const ok = setup({}, fakeUpstream(async () => [{ id: 'gpt-x', object: 'model', created: 1, owned_by: 'openai' }]));
    expect(((await (await ok.app.request('/v1/models')).json()) as any).data.map((m: any) => m.id)).toEqual([SCRIPTED_MODEL, 'gpt-x']);
    const down = setup({}, fakeUpstream(async () => Promise.reject(new Error('down'))));
    expect(((await (await down.app.request('/v1/models')).json()) as any).data.map((m: any) => m.id)).toEqual([SCRIPTED_MODEL]);
  });
});
