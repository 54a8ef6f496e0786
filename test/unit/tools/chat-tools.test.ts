import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import type { JobSpec } from '../../../src/engine/types.js';
import { createApp } from '../../../src/server/app.js';
import { SCRIPTED_MODEL, ScriptedEngine } from '../../helpers/scripted-engine.js';

const config = loadConfig([], {});
const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const add = { type: 'function', function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } } } };
const CALL = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

function setup(script: (spec: JobSpec) => string) {
  const engine = new ScriptedEngine({ script, tokensPerStep: 3, contextLength: 8192 });
  const app = createApp({ engine, config });
  const post = (body: object) => app.request('/v1/chat/completions', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const prompt = (i = 0) => Buffer.from(engine.submitted[i].promptIds).toString('utf8');
  return { engine, post, prompt };
}
const chat = (extra: object) => ({ model: SCRIPTED_MODEL, messages: [{ role: 'user', content: 'Weather in Paris?' }], max_tokens: 200, ...extra });

async function sse(res: Response): Promise<any[]> {
  return (await res.text())
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map((e) => JSON.parse(e.slice(6)));
}

describe('chat tools', () => {
  it('offers the tools in a Hermes system block when the template has no tools, and returns the parsed call', async () => {
    const { post, prompt } = setup(() => CALL);
    const res = await post(chat({ tools: [weather, add] }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(prompt()).toMatch(/^system: You may call one or more functions[\s\S]*<tools>\n\{"type":"function","function":\{"name":"get_weather"/);
    expect(body.choices[0].finish_reason).toBe('tool_calls');
    expect(body.choices[0].message.content).toBe('Checking.');
    // The arguments are the model's own JSON text, exactly as streamed.
    expect(body.choices[0].message.tool_calls).toEqual([{ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }]);
  });

  it('streams text, then the call as a tool_calls delta, and finishes with tool_calls', async () => {
    const { post } = setup(() => CALL);
    const chunks = await sse(await post(chat({ tools: [weather], stream: true })));
    const deltas = chunks.map((c) => c.choices[0].delta);
    expect(deltas.map((d) => d.content ?? '').join('')).toBe('Checking.');
    const calls = deltas.flatMap((d) => d.tool_calls ?? []);
    // The first entry names the call; the arguments follow in pieces as they are generated.
    expect(calls[0]).toEqual({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(calls.length).toBeGreaterThan(3);
    expect(calls.slice(1).every((c) => c.index === 0 && c.id === undefined)).toBe(true);
    expect(calls.map((c) => c.function.arguments).join('')).toBe('{"city": "Paris"}');
    expect(chunks.at(-1).choices[0].finish_reason).toBe('tool_calls');
    expect(JSON.stringify(chunks)).not.toContain('<tool_call>');
  });

  it('renders assistant tool_calls and tool results of the history back in the same format', async () => {
    const { post, prompt } = setup(() => 'It is sunny.');
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"sunny"}' },
    ];
    const body = (await (await post(chat({ messages, tools: [weather] }))).json()) as any;
    expect(prompt()).toContain('assistant: <tool_call>\n{"name":"get_weather","arguments":{"city":"Paris"}}\n</tool_call>\n');
    expect(prompt()).toContain('user: <tool_response>\n{"sky":"sunny"}\n</tool_response>\n');
    expect(body.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'It is sunny.' } });
    expect(body.choices[0].message.tool_calls).toBeUndefined();
  });

  it('tool_choice none: no tools in the prompt, markup stays text', async () => {
    const { post, prompt } = setup(() => CALL);
    const body = (await (await post(chat({ tools: [weather], tool_choice: 'none' }))).json()) as any;
    expect(prompt()).not.toContain('<tools>');
    expect(body.choices[0].message.content).toBe(CALL);
    expect(body.choices[0].finish_reason).toBe('stop');
  });

  it('tool_choice required constrains the output to a list of calls and parses it', async () => {
    const { post, engine } = setup(() => '[{"name": "add", "parameters": {"a": 1, "b": 2}}]');
    const body = (await (await post(chat({ tools: [weather, add], tool_choice: 'required' }))).json()) as any;
    const constraint = engine.submitted[0].constraint as any;
    expect(constraint.type).toBe('json_schema');
    expect(constraint.schema.items.anyOf.map((s: any) => s.properties.name.const)).toEqual(['get_weather', 'add']);
    expect(body.choices[0].message.tool_calls[0].function).toEqual({ name: 'add', arguments: '{"a":1,"b":2}' });
    expect(body.choices[0].finish_reason).toBe('tool_calls');
  });

  it('a named function constrains the output to its parameters schema', async () => {
    const { post, engine } = setup(() => '{"city": "Oslo"}');
    const chunks = await sse(await post(chat({ tools: [weather, add], tool_choice: { type: 'function', function: { name: 'get_weather' } }, stream: true })));
    expect((engine.submitted[0].constraint as any).schema).toEqual(weather.function.parameters);
    const calls = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    expect(calls[0].function).toEqual({ name: 'get_weather', arguments: '' });
    expect(calls.map((c) => c.function.arguments).join('')).toBe('{"city": "Oslo"}');
    expect(chunks.at(-1).choices[0].finish_reason).toBe('tool_calls');
  });

  const refusals: [string, object, string, string?][] = [
    ['tool_choice without tools', { tool_choice: 'auto' }, 'tool_choice'],
    ['tool_choice naming an unknown function', { tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice'],
    ['a malformed parameters schema', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'objekt' } } }] }, 'tools[0].function.parameters', 'invalid_json_schema'],
    ['a bad function name', { tools: [{ type: 'function', function: { name: 'no spaces' } }] }, 'tools[0].function.name'],
    ['a non-function tool', { tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    ['duplicate names', { tools: [weather, weather] }, 'tools[1]'],
    ['legacy functions', { functions: [weather.function] }, 'functions'],
    ['legacy function_call', { function_call: 'auto' }, 'function_call'],
    ['a required call whose schema the grammar cannot enforce', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', not: { required: ['a'] } } } }], tool_choice: 'required' }, 'tools[0].function.parameters', 'unsupported_schema_feature'],
    ['a tool message without tool_call_id', { messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id'],
    ['tool call arguments that are not JSON', { messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{oops' } }] }] }, 'messages[0].tool_calls[0].function.arguments'],
  ];
  for (const [name, extra, param, code] of refusals) {
    it(`refuses ${name} with 400 and param ${param}`, async () => {
      const { post, engine } = setup(() => 'x');
      const res = await post(chat(extra));
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as any;
      expect(error.param).toBe(param);
      if (code) expect(error.code).toBe(code);
      expect(engine.submitted).toHaveLength(0);
    });
  }

  it('accepts under auto a schema feature the grammar could not enforce (nothing is constrained)', async () => {
    const { post } = setup(() => 'fine');
    const res = await post(chat({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', not: { required: ['a'] } } } }] }));
    expect(res.status).toBe(200);
  });
});
