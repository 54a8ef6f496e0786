import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import type { JobSpec } from '../../../src/engine/types.js';
import { createApp } from '../../../src/server/app.js';
import { SCRIPTED_MODEL, ScriptedEngine } from '../../helpers/scripted-engine.js';

const config = loadConfig([], {});
const weather = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

function setup(script: (spec: JobSpec) => string) {
  const engine = new ScriptedEngine({ script, tokensPerStep: 4, contextLength: 8192 });
  const app = createApp({ engine, config });
  const post = (body: object) => app.request('/v1/responses', { method: 'POST', body: JSON.stringify({ model: SCRIPTED_MODEL, max_output_tokens: 300, ...body }), headers: { 'content-type': 'application/json' } });
  return { engine, post };
}

async function events(res: Response): Promise<{ event: string; data: any }[]> {
  return (await res.text())
    .split('\n\n')
    .filter((e) => e.startsWith('event: '))
    .map((e) => {
      const [head, data] = e.split('\n');
      return { event: head.slice(7), data: JSON.parse(data.slice(6)) };
    });
}

describe('Responses API: function calls and text.format', () => {
  it('returns text and a function_call item, non-streamed', async () => {
    const { post } = setup(() => 'One moment. <tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>');
    const body = (await (await post({ input: 'Weather in Rome?', tools: [weather] })).json()) as any;
    expect(body.output.map((o: any) => o.type)).toEqual(['message', 'function_call']);
    expect(body.output[0].content[0].text).toBe('One moment.');
    expect(body.output[1]).toMatchObject({ name: 'get_weather', arguments: '{"city": "Rome"}', status: 'completed', call_id: expect.stringMatching(/^call_/), id: expect.stringMatching(/^fc_/) });
  });

  it('streams a function call as output_item.added, arguments delta/done, output_item.done', async () => {
    const { post } = setup(() => '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>');
    const list = await events(await post({ input: 'Weather in Rome?', tools: [weather], stream: true }));
    const deltas = list.filter((e) => e.event === 'response.function_call_arguments.delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(list.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      ...deltas.map(() => 'response.function_call_arguments.delta'),
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    for (const e of list) expect(e.data.type).toBe(e.event);
    expect(list[2].data.item).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '', status: 'in_progress' });
    expect(deltas.map((e) => e.data.delta).join('')).toBe('{"city": "Rome"}');
    expect(list.at(-1)!.data.response.output).toEqual([expect.objectContaining({ type: 'function_call', arguments: '{"city": "Rome"}', status: 'completed' })]);
  });

  it('text.format json_schema becomes the job constraint; tool_choice required a call constraint', async () => {
    const schema = { type: 'object', properties: { title: { type: 'string' } }, required: ['title'], additionalProperties: false };
    const { post, engine } = setup(() => '{"title": "x"}');
    expect((await post({ input: 'x', text: { format: { type: 'json_schema', name: 'doc', schema, strict: true } } })).status).toBe(200);
    expect(engine.submitted[0].constraint).toEqual({ type: 'json_schema', name: 'doc', schema, strict: true });
    expect((await post({ input: 'x', text: { format: { type: 'json_object' } } })).status).toBe(200);
    expect(engine.submitted[1].constraint).toEqual({ type: 'json_object' });
    expect((await post({ input: 'x', tools: [weather], tool_choice: { type: 'function', name: 'get_weather' } })).status).toBe(200);
    expect((engine.submitted[2].constraint as any).schema).toEqual(weather.parameters);
  });

  it('resolves item_reference to recent output items of the same tenant; store: false keeps none', async () => {
    const { post } = setup((spec) => (Buffer.from(spec.promptIds).toString().includes('<tool_response>') ? 'Sunny.' : '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'));
    const first = (await (await post({ input: 'Weather in Rome?', tools: [weather] })).json()) as any;
    const call = first.output[0];
    const follow = await post({
      input: [{ role: 'user', content: 'Weather in Rome?' }, { type: 'item_reference', id: call.id }, { type: 'function_call_output', call_id: call.call_id, output: '{"sky":"sunny"}' }],
      tools: [weather],
    });
    expect(((await follow.json()) as any).output[0].content[0].text).toBe('Sunny.');
    const unstored = (await (await post({ input: 'Weather in Rome?', tools: [weather], store: false })).json()) as any;
    expect(unstored.store).toBe(false);
    const missing = await post({ input: [{ type: 'item_reference', id: unstored.output[0].id }] });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as any).error.param).toBe('input[0].id');
  });

  const refusals: [string, object, string][] = [
    ['an invalid text.format schema', { text: { format: { type: 'json_schema', name: 'x', schema: { type: 12 } } } }, 'text.format.schema'],
    ['an unknown tool_choice function', { tools: [weather], tool_choice: { type: 'function', name: 'nope' } }, 'tool_choice'],
    ['a malformed parameters schema', { tools: [{ type: 'function', name: 'f', parameters: { type: 'objekt' } }] }, 'tools[0].parameters'],
    ['tool_choice without tools', { tool_choice: 'required' }, 'tool_choice'],
    ['an unknown item type', { input: [{ type: 'web_search_call' }] }, 'input[0].type'],
    ['an unknown previous_response_id', { previous_response_id: 'resp_1' }, 'previous_response_id'],
    ['an unknown truncation', { truncation: 'middle' }, 'truncation'],
    ['background', { background: true }, 'background'],
  ];
  for (const [name, body, param] of refusals) {
    it(`refuses ${name} with 400 and param ${param}`, async () => {
      const { post, engine } = setup(() => 'x');
      const res = await post({ input: 'hi', ...body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error.param).toBe(param);
      expect(engine.submitted).toHaveLength(0);
    });
  }
});
