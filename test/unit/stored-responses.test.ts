import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { JobSpec } from '../../src/engine/types.js';
import { createApp } from '../../src/server/app.js';
import { RecordStore } from '../../src/server/responses/store.js';
import { SCRIPTED_MODEL, ScriptedEngine } from '../helpers/scripted-engine.js';

const promptOf = (spec: JobSpec) => Buffer.from(spec.promptIds).toString('utf8');

/** A config file with API keys for tenants a and b. */
function twoTenants(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'stored-responses-')), 'config.yaml');
  writeFileSync(file, 'auth:\n  apiKeys:\n    - { key: sk-a, tenant: a }\n    - { key: sk-b, tenant: b }\n');
  return file;
}

function setup(flags: string[] = [], options: { contextLength?: number; script?: (spec: JobSpec) => string } = {}) {
  const config = loadConfig(flags, {});
  const engine = new ScriptedEngine({ script: options.script ?? ((spec) => `answer ${spec.promptIds.length}`), contextLength: options.contextLength ?? 1 << 20 });
  const app = createApp({ engine, config });
  const post = (body: object, key?: string) =>
    app.request('/v1/responses', {
      method: 'POST',
      body: JSON.stringify({ model: SCRIPTED_MODEL, max_output_tokens: 64, ...body }),
      headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    });
  const json = async (body: object, key?: string) => {
    const res = await post(body, key);
    const parsed = (await res.json()) as any;
    if (res.status !== 200) throw Object.assign(new Error(parsed.error.message), { status: res.status, param: parsed.error.param, code: parsed.error.code });
    return parsed;
  };
  return { engine, post, json };
}

describe('stored responses: previous_response_id', () => {
  it('continues a stored response: its input and output become the history; its instructions do not carry over', async () => {
    const { engine, json } = setup();
    const first = await json({ instructions: 'Be brief.', input: 'My name is Ada.' });
    expect(first.store).toBe(true);
    const second = await json({ input: 'What is my name?', previous_response_id: first.id });
    expect(second.previous_response_id).toBe(first.id);
    const prompt = promptOf(engine.submitted[1]);
    expect(prompt).toBe(`user: My name is Ada.\nassistant: ${first.output[0].content[0].text}\nuser: What is my name?\nassistant: `);
    // A chain: the third turn sees both earlier ones.
    await json({ input: 'And again?', previous_response_id: second.id });
    expect(promptOf(engine.submitted[2])).toContain('user: My name is Ada.\nassistant: ');
    expect(promptOf(engine.submitted[2])).toContain('user: What is my name?\nassistant: ');
  });

  it('streamed responses are stored as well; store: false keeps nothing; an unknown id is a 400 naming the field', async () => {
    const { json, post } = setup();
    const streamed = await post({ input: 'Hello', stream: true });
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(await streamed.text())![1];
    expect((await json({ input: 'Again', previous_response_id: id })).output[0].type).toBe('message');
    const unstored = await json({ input: 'Hello', store: false });
    expect(unstored.store).toBe(false);
    await expect(json({ input: 'Again', previous_response_id: unstored.id })).rejects.toMatchObject({ status: 400, param: 'previous_response_id', code: 'previous_response_not_found' });
    await expect(json({ input: [{ type: 'item_reference', id: unstored.output[0].id }] })).rejects.toMatchObject({ status: 400, param: 'input[0].id' });
  });

  it('one tenant cannot continue (or reference) another tenant\'s responses', async () => {
    const { json } = setup(['--config', twoTenants()]);
    const mine = await json({ input: 'Secret plans' }, 'sk-a');
    await expect(json({ input: 'Tell me', previous_response_id: mine.id }, 'sk-b')).rejects.toMatchObject({ status: 400, param: 'previous_response_id' });
    await expect(json({ input: [{ type: 'item_reference', id: mine.output[0].id }] }, 'sk-b')).rejects.toMatchObject({ status: 400 });
    expect((await json({ input: 'Tell me', previous_response_id: mine.id }, 'sk-a')).status).toBe('completed');
  });
});

describe('stored responses: bounded per tenant by bytes (issue 24 item 11)', () => {
  it('a tenant past its byte bound loses its own oldest responses and items, never another tenant\'s', async () => {
    const { json } = setup(['--config', twoTenants(), '--responses-store-mb', '1']);
    const quiet = await json({ input: 'A small question' }, 'sk-a');
    // Tenant b stores 6 × 300 kB of input: past its 1 MiB, its oldest go.
    const big = 'x'.repeat(300_000);
    const hers: any[] = [];
    for (let i = 0; i < 6; i++) hers.push(await json({ input: `${i} ${big}`, max_output_tokens: 8 }, 'sk-b'));
    await expect(json({ input: 'more', previous_response_id: hers[0].id, max_output_tokens: 8 }, 'sk-b')).rejects.toMatchObject({ status: 400, param: 'previous_response_id' });
    await expect(json({ input: [{ type: 'item_reference', id: hers[0].output[0].id }] }, 'sk-b')).rejects.toMatchObject({ status: 400, param: 'input[0].id' });
    expect((await json({ input: 'more', previous_response_id: hers[5].id, max_output_tokens: 8 }, 'sk-b')).previous_response_id).toBe(hers[5].id);
    // Tenant a's one response and its item are untouched by b's traffic.
    expect((await json({ input: 'more', previous_response_id: quiet.id }, 'sk-a')).status).toBe('completed');
    expect((await json({ input: [{ type: 'item_reference', id: quiet.output[0].id }] }, 'sk-a')).status).toBe('completed');
  });

  it('the record store holds at most its bound per tenant, counted in bytes, whatever the number of records', async () => {
    const store = new RecordStore({ bytesPerTenant: 10_000, ttlMs: 60_000 });
    store.put('a', [{ key: 'item:a1', json: '{"keep":"me"}' }]);
    for (let i = 0; i < 20_000; i++) store.put('b', [{ key: `item:b${i}`, json: `{"n":${i}}` }]);
    expect(store.bytes('b')).toBeLessThanOrEqual(10_000);
    expect(store.bytes('b')).toBeGreaterThan(9_000);
    expect((await store.get('a', ['item:a1'])).get('item:a1')).toBe('{"keep":"me"}');
    expect((await store.get('b', ['item:b0', 'item:b19999'])).has('item:b0')).toBe(false);
    const none = new RecordStore({ bytesPerTenant: 0, ttlMs: 60_000 });
    none.put('a', [{ key: 'k', json: '{}' }]);
    expect((await none.get('a', ['k'])).size).toBe(0);
  });
});

describe('truncation', () => {
  const turns = Array.from({ length: 12 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i} ${'words '.repeat(8)}` }));

  it('"auto" drops the oldest items until the prompt fits; "disabled" (the default) answers 400 as before', async () => {
    const { engine, json } = setup([], { contextLength: 400 });
    await expect(json({ input: turns, max_output_tokens: 64 })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
    const fitted = await json({ instructions: 'Be brief.', input: turns, max_output_tokens: 64, truncation: 'auto' });
    expect(fitted.truncation).toBe('auto');
    const prompt = promptOf(engine.submitted[0]);
    expect(engine.submitted[0].promptIds.length + 64).toBeLessThanOrEqual(400);
    expect(prompt.startsWith('system: Be brief.\n')).toBe(true);
    expect(prompt).toContain('turn 11 ');
    expect(prompt).not.toContain('turn 0 ');
    // As few dropped as needed: with one more of the old items it would not have fitted.
    const first = turns.findIndex((_, i) => prompt.includes(`turn ${i} `));
    await expect(json({ instructions: 'Be brief.', input: turns.slice(first - 1), max_output_tokens: 64 })).rejects.toMatchObject({ status: 400 });
  });

  it('"auto" cannot help when the last item alone is too long: 400', async () => {
    const { json } = setup([], { contextLength: 100 });
    await expect(json({ input: [{ role: 'user', content: 'y'.repeat(200) }], truncation: 'auto' })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
  });
});

describe('tools together with a response format', () => {
  const weather = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } };
  const schema = { type: 'object', properties: { title: { type: 'string' } }, required: ['title'], additionalProperties: false };
  const format = { format: { type: 'json_schema', name: 'doc', schema, strict: true } };

  it('tool_choice auto: one grammar allowing the formatted answer or a list of calls; either is read back', async () => {
    const { engine, json } = setup([], { script: (spec) => (promptOf(spec).includes('Rome') ? '[{"name": "get_weather", "parameters": {"city": "Rome"}}]' : '{"title": "x"}') });
    const answer = await json({ input: 'Title?', tools: [weather], text: format });
    expect(answer.output[0].content[0].text).toBe('{"title": "x"}');
    const union = engine.submitted[0].constraint as { type: string; schema: { anyOf: object[] } };
    expect(union.type).toBe('json_schema');
    expect(union.schema.anyOf[0]).toEqual(schema);
    expect(JSON.stringify(union.schema.anyOf[1])).toContain('"const":"get_weather"');
    const call = await json({ input: 'Weather in Rome?', tools: [weather], text: format });
    expect(call.output).toEqual([expect.objectContaining({ type: 'function_call', name: 'get_weather', arguments: '{"city":"Rome"}' })]);
  });

  it('chat: response_format with tools in auto, streamed: a formatted answer streams as content', async () => {
    const app = createApp({ engine: new ScriptedEngine({ script: () => '{"title": "streamed"}', tokensPerStep: 2, contextLength: 4096 }), config: loadConfig([], {}) });
    const res = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: SCRIPTED_MODEL,
        messages: [{ role: 'user', content: 'Title?' }],
        tools: [{ type: 'function', function: { name: weather.name, parameters: weather.parameters } }],
        response_format: { type: 'json_schema', json_schema: { name: 'doc', schema } },
        stream: true,
      }),
    });
    const deltas = (await res.text()).split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '');
    expect(deltas.filter((d) => d).length).toBeGreaterThan(2);
    expect(deltas.join('')).toBe('{"title": "streamed"}');
  });

  it('json_object with tools: any object or a call list; a tool whose parameters the grammar cannot enforce is a 400', async () => {
    const { engine, json, post } = setup([], { script: () => '{"free": [1, 2]}' });
    expect((await json({ input: 'x', tools: [weather], text: { format: { type: 'json_object' } } })).output[0].content[0].text).toBe('{"free": [1, 2]}');
    expect((engine.submitted[0].constraint as unknown as { schema: { anyOf: object[] } }).schema.anyOf[0]).toEqual({ type: 'object', additionalProperties: true });
    const odd = { ...weather, parameters: { type: 'object', properties: { n: { type: 'number', multipleOf: 3 } } } };
    const res = await post({ input: 'x', tools: [odd], text: { format: { type: 'json_object' } } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.param).toBe('tools[0]');
  });
});
