import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/**
 * Structured outputs through the official SDK's own helpers (`zodResponseFormat` + `chat.completions.parse`, the
 * path LangChain's withStructuredOutput and Vercel's generateObject take too), on the real server and engine. The
 * synthetic model's output is noise, so the grammar alone makes it valid.
 */
let server: RealServer;
let client: OpenAI;
let model: string;

beforeAll(async () => {
  server = await startRealServer(['--context-length', '1024']);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 });
  model = server.modelId;
});
afterAll(async () => {
  await server?.close();
});

const Person = z.object({
  name: z.string().max(12),
  age: z.number().int().min(0).max(99),
  tags: z.array(z.enum(['news', 'sport'])).max(2),
  nick: z.string().max(8).nullable(),
});
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Describe a person as JSON.' }];

describe('structured outputs through the OpenAI SDK', () => {
  it('chat.completions.parse with a zod schema returns a parsed, valid object; lookahead on and off agree', async () => {
    const request = { model, messages, temperature: 0, max_tokens: 120, response_format: zodResponseFormat(Person, 'person') };
    const on = await client.chat.completions.parse({ ...request, lookahead: { enabled: true } } as typeof request);
    const off = await client.chat.completions.parse({ ...request, lookahead: { enabled: false } } as typeof request);
    expect(on.choices[0].finish_reason).toBe('stop');
    const parsed = on.choices[0].message.parsed!;
    expect(Person.parse(parsed)).toEqual(parsed);
    expect(on.choices[0].message.content).toBe(off.choices[0].message.content);
  });

  it('streams a json_schema answer whose deltas join into the non-streamed JSON', async () => {
    const request = { model, messages, temperature: 0, max_tokens: 120, response_format: zodResponseFormat(Person, 'person') };
    const whole = await client.chat.completions.create(request);
    let text = '';
    let finish: string | null = null;
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('stop');
    expect(text).toBe(whole.choices[0].message.content);
    expect(Person.safeParse(JSON.parse(text)).success).toBe(true);
  });

  it('sampling (temperature, top_p, seed) under the grammar gives valid, reproducible objects', async () => {
    const request = { model, messages, temperature: 0.9, top_p: 0.95, seed: 7, n: 2, max_tokens: 120, response_format: zodResponseFormat(Person, 'person') };
    const a = await client.chat.completions.parse(request);
    const b = await client.chat.completions.parse(request);
    for (const choice of a.choices) {
      expect(choice.finish_reason).toBe('stop');
      expect(Person.safeParse(choice.message.parsed).success).toBe(true);
    }
    expect(a.choices.map((c) => c.message.content)).toEqual(b.choices.map((c) => c.message.content));
  });

  it('json_object gives a JSON object (cut only by max_tokens)', async () => {
    const res = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 48, response_format: { type: 'json_object' } });
    const content = res.choices[0].message.content!;
    expect(content.startsWith('{')).toBe(true);
    if (res.choices[0].finish_reason === 'stop') expect(typeof JSON.parse(content)).toBe('object');
  });

  it('completions accept response_format too (an extension, as in vLLM)', async () => {
    const res = await client.completions.create({
      model,
      prompt: 'A colour as JSON:',
      temperature: 0,
      max_tokens: 40,
      response_format: { type: 'json_schema', json_schema: { name: 'colour', schema: { type: 'object', properties: { colour: { enum: ['red', 'blue'] } }, required: ['colour'] } } },
    } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(['{"colour": "red"}', '{"colour": "blue"}']).toContain(res.choices[0].text);
  });

  it('refuses an invalid schema and an unsupported feature with a 400 naming the param', async () => {
    const bad = (schema: Record<string, unknown>) =>
      client.chat.completions.create({ model, messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
    const invalid = await bad({ type: 'object', required: 'name' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(OpenAI.BadRequestError);
    expect((invalid as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('response_format.json_schema.schema');
    expect((invalid as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('invalid_json_schema');
    const unsupported = await bad({ type: 'object', properties: { a: { type: 'integer' } }, if: { required: ['a'] } }).catch((e: unknown) => e);
    expect(unsupported).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unsupported as Error).message).toContain("'if'");
    expect((unsupported as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('unsupported_schema_feature');
  });

  it('tools with a response format in auto: every answer is the formatted object or a valid call, as one grammar allows', async () => {
    const lookup = { type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { id: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['id'], additionalProperties: false } } };
    const request = { model, messages, max_tokens: 120, tools: [lookup], response_format: zodResponseFormat(Person, 'person') };
    const sampled = await client.chat.completions.create({ ...request, temperature: 1, seed: 3, n: 4 });
    const kinds = sampled.choices.map((choice) => {
      expect(choice.finish_reason).not.toBe('length');
      const calls = choice.message.tool_calls ?? [];
      if (calls.length === 0) return Person.safeParse(JSON.parse(choice.message.content!)).success ? 'answer' : 'invalid';
      return calls.every((c) => c.type === 'function' && c.function.name === 'lookup' && Number.isInteger(JSON.parse(c.function.arguments).id)) ? 'call' : 'invalid';
    });
    expect(kinds).not.toContain('invalid');
    // Noise prefers the object; a bias towards `[` (byte 0x5b of the synthetic model's byte vocabulary) takes the call branch.
    const called = await client.chat.completions.create({ ...request, temperature: 0, parallel_tool_calls: false, logit_bias: { 91: 100 } });
    expect(called.choices[0].finish_reason).toBe('tool_calls');
    expect(called.choices[0].message.tool_calls).toHaveLength(1);
    const call = called.choices[0].message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe('lookup');
    expect(Number.isInteger(JSON.parse(call.function.arguments).id)).toBe(true);
    const greedy = { ...request, temperature: 0 };
    const on = await client.chat.completions.create({ ...greedy, lookahead: { enabled: true } } as typeof greedy);
    const off = await client.chat.completions.create({ ...greedy, lookahead: { enabled: false } } as typeof greedy);
    expect(on.choices[0].message).toEqual(expect.objectContaining({ content: off.choices[0].message.content }));
  });
});
