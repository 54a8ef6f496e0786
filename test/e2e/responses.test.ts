import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_MODEL, startShippedServer, type RealServer } from '../helpers/real-server.js';

/** `POST /v1/responses` on the real server and engine (the shipped chat-llama-5m), driven by the official SDK. */
let server: RealServer;
let client: OpenAI;
const model = SHIPPED_MODEL;

beforeAll(async () => {
  server = await startShippedServer();
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
});

const instructions = 'You answer questions about health.';
const question = 'What are the symptoms of a cold?';

describe('Responses API with the openai SDK', () => {
  it('answers like chat completions (same greedy text), with output items, usage and the lookahead block', async () => {
    const resp = await client.responses.create({ model, instructions, input: question, max_output_tokens: 24, temperature: 0 });
    const chat = await client.chat.completions.create({
      model,
      messages: [{ role: 'system', content: instructions }, { role: 'user', content: question }],
      max_tokens: 24,
      temperature: 0,
    });
    expect(resp.object).toBe('response');
    expect(resp.id).toMatch(/^resp_/);
    expect(resp.output_text.length).toBeGreaterThan(0);
    expect(resp.output_text).toBe(chat.choices[0].message.content);
    expect(resp.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
    expect(resp.usage).toMatchObject({ input_tokens: chat.usage!.prompt_tokens, output_tokens: chat.usage!.completion_tokens });
    expect(resp.usage!.total_tokens).toBe(resp.usage!.input_tokens + resp.usage!.output_tokens);
    expect(resp.status).toBe(chat.choices[0].finish_reason === 'length' ? 'incomplete' : 'completed');
    const la = (resp as unknown as { lookahead: { steps: number; tokens_per_step: number } }).lookahead;
    expect(la.steps).toBeGreaterThan(0);
    expect(la.tokens_per_step).toBeGreaterThanOrEqual(1);
  });

  it('streams the documented event sequence, whose deltas add up to the non-streamed text', async () => {
    const plain = await client.responses.create({ model, input: question, max_output_tokens: 30, temperature: 0 });
    const stream = await client.responses.create({ model, input: question, max_output_tokens: 30, temperature: 0, stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(0);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      plain.status === 'completed' ? 'response.completed' : 'response.incomplete',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    expect(text).toBe(plain.output_text);
    const last = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect(last.response.output_text ?? last.response.output.flatMap((o) => (o.type === 'message' ? o.content : [])).map((c) => (c.type === 'output_text' ? c.text : '')).join('')).toBe(plain.output_text);
    expect(last.response.usage!.output_tokens).toBe(plain.usage!.output_tokens);
  });

  it('the lookahead extension and session id work as on chat: output identical with lookahead on and off', async () => {
    const base = { model, input: question, max_output_tokens: 40, temperature: 0 };
    const off = await client.responses.create({ ...base, lookahead: { enabled: false } } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const on = await client.responses.create({ ...base, lookahead: { enabled: true, layout: 'hier' } } as OpenAI.Responses.ResponseCreateParamsNonStreaming, {
      headers: { 'X-Session-Id': 'responses-test' },
    });
    expect(on.output_text).toBe(off.output_text);
    expect((off as unknown as { lookahead: { draft_tokens: number } }).lookahead.draft_tokens).toBe(0);
  });

  it('takes a conversation as items, including an earlier function call and its output', async () => {
    const resp = await client.responses.create({
      model,
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'Weather in Paris?' }] },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '{"sky":"sunny"}' },
      ],
      tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }],
      max_output_tokens: 8,
      temperature: 0,
    });
    expect(resp.output.length).toBeGreaterThan(0);
  });

  it('refuses an unknown previous_response_id and bad input with a 400 naming the field', async () => {
    await expect(client.responses.create({ model, input: 'hi', previous_response_id: 'resp_123' })).rejects.toMatchObject({
      status: 400,
      param: 'previous_response_id',
      code: 'previous_response_not_found',
    });
    await expect(client.responses.create({ model, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x', detail: 'auto' }] }] })).rejects.toMatchObject({
      status: 400,
      param: 'input[0].content[0]',
    });
    await expect(client.responses.create({ model, input: 'hi', max_output_tokens: 0 })).rejects.toMatchObject({ status: 400, param: 'max_output_tokens' });
  });
});
