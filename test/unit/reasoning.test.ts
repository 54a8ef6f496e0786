import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { JobSpec } from '../../src/engine/types.js';
import { createApp } from '../../src/server/app.js';
import { splitThinking, ThinkingStream } from '../../src/server/reasoning.js';
import { SCRIPTED_MODEL, ScriptedEngine } from '../helpers/scripted-engine.js';

/** Piece by piece, in every cut: what comes out must not depend on where the stream was cut. */
function splitInPieces(text: string, size: number, startsInside: boolean): { reasoning: string; content: string } {
  const stream = new ThinkingStream({ startsInside });
  let reasoning = '';
  let content = '';
  for (let i = 0; i < text.length; i += size) {
    const p = splitThinking(stream, text.slice(i, i + size), false);
    reasoning += p.reasoning;
    content += p.content;
  }
  const p = splitThinking(stream, '', true);
  return { reasoning: reasoning + p.reasoning, content: content + p.content };
}

describe('ThinkingStream', () => {
  const cases: [string, boolean, string, string][] = [
    ['Sky is blue because of Rayleigh.\n</think>\n\nIt scatters.', true, 'Sky is blue because of Rayleigh.', 'It scatters.'],
    ['\n<think>\nhm, blue</think>Blue.', false, 'hm, blue', 'Blue.'],
    ['Just an answer with <think> later', false, '', 'Just an answer with <think> later'],
    ['still thinking when cut off </thi', true, 'still thinking when cut off </thi', ''],
    ['<thin', false, '', '<thin'],
  ];
  for (const [text, inside, reasoning, content] of cases) {
    it(`splits ${JSON.stringify(text.slice(0, 24))} alike in any cut`, () => {
      for (const size of [1, 2, 3, 7, 1000]) expect(splitInPieces(text, size, inside)).toEqual({ reasoning, content });
    });
  }
});

const config = loadConfig([], {});

function setup(script: (prompt: string, spec: JobSpec) => string) {
  const engine = new ScriptedEngine({ script: (spec) => script(Buffer.from(spec.promptIds).toString('utf8'), spec), tokensPerStep: 3, contextLength: 4096, thinks: true });
  const app = createApp({ engine, config });
  const post = (path: string, body: object) =>
    app.request(path, { method: 'POST', body: JSON.stringify({ model: SCRIPTED_MODEL, max_tokens: 300, ...body }), headers: { 'content-type': 'application/json' } });
  return { engine, post };
}

/** Answers with thinking unless the prompt closed the block (enable_thinking false). */
const thinker = (prompt: string) => (prompt.endsWith('<think>\n') ? 'The user asks about weather.\n</think>\n\nIt is sunny.' : 'It is sunny.');

function dataLines(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice(6)));
}

describe('reasoning on the HTTP routes (a template that opens the think block)', () => {
  it('chat splits thinking from the answer, streamed as its own deltas, and counts its tokens', async () => {
    const { post } = setup(thinker);
    const plain = (await (await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Weather?' }] })).json()) as any;
    expect(plain.choices[0].message).toMatchObject({ content: 'It is sunny.', reasoning_content: 'The user asks about weather.', reasoning: 'The user asks about weather.' });
    // Scripted tokens are bytes: thinking is everything up to and including `</think>`.
    expect(plain.usage.completion_tokens_details.reasoning_tokens).toBe(Buffer.byteLength('The user asks about weather.\n</think>'));

    const chunks = dataLines(await (await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Weather?' }], stream: true, stream_options: { include_usage: true } })).text());
    const deltas = chunks.flatMap((c) => (c.choices[0] ? [c.choices[0].delta] : []));
    const reasoningAt = deltas.findIndex((d) => d.reasoning_content);
    const contentAt = deltas.findIndex((d) => d.content);
    expect(reasoningAt).toBeGreaterThan(0);
    expect(contentAt).toBeGreaterThan(reasoningAt);
    expect(deltas.map((d) => d.reasoning_content ?? '').join('')).toBe('The user asks about weather.');
    expect(deltas.map((d) => d.content ?? '').join('')).toBe('It is sunny.');
    expect(chunks.at(-1).usage.completion_tokens_details.reasoning_tokens).toBe(plain.usage.completion_tokens_details.reasoning_tokens);
  });

  it('reasoning_effort none sets enable_thinking false; chat_template_kwargs the client sent win', async () => {
    const { post, engine } = setup(thinker);
    const off = (await (await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Weather?' }], reasoning_effort: 'none' })).json()) as any;
    expect(Buffer.from(engine.submitted[0].promptIds).toString()).toContain('{"enable_thinking":false}');
    expect(off.choices[0].message).toMatchObject({ content: 'It is sunny.', reasoning_content: null });
    expect(off.usage.completion_tokens_details.reasoning_tokens).toBe(0);
    await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Weather?' }], reasoning_effort: 'none', chat_template_kwargs: { enable_thinking: true } });
    expect(Buffer.from(engine.submitted[1].promptIds).toString()).toContain('{"enable_thinking":true}');
    await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Weather?' }], reasoning_effort: 'high' });
    expect(Buffer.from(engine.submitted[2].promptIds).toString()).not.toContain('enable_thinking');
  });

  it('a tool call after thinking is a call, the thinking its reasoning', async () => {
    const { post } = setup(() => 'I need the weather tool.</think><tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>');
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const body = (await (await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Rome?' }], tools })).json()) as any;
    expect(body.choices[0].message).toMatchObject({ content: null, reasoning_content: 'I need the weather tool.' });
    expect(body.choices[0].message.tool_calls[0].function).toEqual({ name: 'get_weather', arguments: '{"city": "Rome"}' });
    expect(body.choices[0].finish_reason).toBe('tool_calls');
  });

  it('Responses: a reasoning item before the message, streamed as reasoning_text events; reasoning.effort none', async () => {
    const { post } = setup(thinker);
    const plain = (await (await post('/v1/responses', { input: 'Weather?' })).json()) as any;
    expect(plain.output.map((o: any) => o.type)).toEqual(['reasoning', 'message']);
    expect(plain.output[0]).toMatchObject({ id: expect.stringMatching(/^rs_/), summary: [], content: [{ type: 'reasoning_text', text: 'The user asks about weather.' }] });
    expect(plain.output[1].content[0].text).toBe('It is sunny.');
    expect(plain.usage.output_tokens_details.reasoning_tokens).toBe(Buffer.byteLength('The user asks about weather.\n</think>'));

    const text = await (await post('/v1/responses', { input: 'Weather?', stream: true })).text();
    const events = text.split('\n\n').filter((e) => e.startsWith('event: ')).map((e) => e.split('\n')[0].slice(7));
    const deltas = events.filter((e) => e === 'response.reasoning_text.delta').length;
    const textDeltas = events.filter((e) => e === 'response.output_text.delta').length;
    expect(events).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      ...Array(deltas).fill('response.reasoning_text.delta'),
      'response.reasoning_text.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(textDeltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);

    const none = (await (await post('/v1/responses', { input: 'Weather?', reasoning: { effort: 'none' } })).json()) as any;
    expect(none.output.map((o: any) => o.type)).toEqual(['message']);
    expect(none.reasoning.effort).toBe('none');
  });
});
