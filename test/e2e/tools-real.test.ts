import { createOpenAI } from '@ai-sdk/openai';
import { generateObject } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SHIPPED_MODEL, startShippedServer, type RealServer } from '../helpers/real-server.js';

/**
 * Grammar-constrained tool calls and structured output on the real engine (chat-llama-5m): whatever the small
 * model would have said, tool_choice required / a named function make its output a valid call, and lookahead
 * changes nothing in it.
 */
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

const weather: OpenAI.Chat.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 24 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false },
  },
};
const alarm: OpenAI.Chat.ChatCompletionTool = {
  type: 'function',
  function: { name: 'set_alarm', parameters: { type: 'object', properties: { hour: { type: 'integer', minimum: 0, maximum: 23 } }, required: ['hour'], additionalProperties: false } },
};
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris this week?' }];

describe('constrained tool calls on the real model', () => {
  it('a named function: a valid call, the same with lookahead on and off, streamed or not', async () => {
    const base = { model, messages, tools: [weather, alarm], tool_choice: { type: 'function', function: { name: 'get_weather' } } as const, max_tokens: 80, temperature: 0 };
    const off = await client.chat.completions.create({ ...base, lookahead: { enabled: false } } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    const on = await client.chat.completions.create(base);
    expect(off.choices[0].finish_reason).toBe('tool_calls');
    const call = off.choices[0].message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments) as { city: string; days: number };
    expect(typeof args.city).toBe('string');
    expect(args.days >= 1 && args.days <= 7).toBe(true);
    expect((on.choices[0].message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.arguments).toBe(call.function.arguments);

    const stream = client.chat.completions.stream({ ...base, stream: true });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0].finish_reason).toBe('tool_calls');
    expect((final.choices[0].message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.arguments).toBe(call.function.arguments);
  });

  it('required (one call: parallel_tool_calls false): a call to an offered function, with valid arguments', async () => {
    // With parallel calls allowed this small model keeps listing calls until max_tokens; one call ends the grammar.
    const res = await client.chat.completions.create({ model, messages, tools: [weather, alarm], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 120, temperature: 0 });
    expect(res.choices[0].finish_reason).toBe('tool_calls');
    const calls = res.choices[0].message.tool_calls as OpenAI.Chat.ChatCompletionMessageFunctionToolCall[];
    expect(calls).toHaveLength(1);
    for (const c of calls) {
      expect(['get_weather', 'set_alarm']).toContain(c.function.name);
      expect(typeof JSON.parse(c.function.arguments)).toBe('object');
    }
  });

  it('Responses API: a named function call as a function_call item', async () => {
    const resp = await client.responses.create({
      model,
      input: 'Wake me at seven.',
      tools: [{ type: 'function', name: 'set_alarm', parameters: alarm.function.parameters!, strict: true }],
      tool_choice: { type: 'function', name: 'set_alarm' },
      max_output_tokens: 40,
      temperature: 0,
    });
    const item = resp.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
    expect(item.name).toBe('set_alarm');
    const { hour } = JSON.parse(item.arguments) as { hour: number };
    expect(Number.isInteger(hour) && hour >= 0 && hour <= 23).toBe(true);
  });

  it('Vercel AI SDK generateObject with a zod schema (Responses text.format) on the real model', async () => {
    const provider = createOpenAI({ baseURL: server.baseURL, apiKey: 'sk-local' });
    const schema = z.object({ title: z.string().max(40), year: z.number().int().min(1900).max(2100), tags: z.array(z.enum(['health', 'news', 'sport'])).max(3) });
    const { object } = await generateObject({ model: provider(model), schema, prompt: 'Describe a news article about a flu season.', temperature: 0, maxOutputTokens: 120 });
    expect(schema.safeParse(object).success).toBe(true);
  });
});
