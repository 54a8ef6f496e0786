import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../src/config/load.js';
import type { JobSpec } from '../../src/engine/types.js';
import { createApp } from '../../src/server/app.js';
import { listen, type RunningServer } from '../../src/server/serve.js';
import { SHIPPED_MODEL, startShippedServer, type RealServer } from '../helpers/real-server.js';
import { SCRIPTED_MODEL, ScriptedEngine } from '../helpers/scripted-engine.js';

/**
 * The Vercel AI SDK (`ai` + `@ai-sdk/openai`) as a second real client. Its default provider model talks to
 * /v1/responses; `.chat(...)` to /v1/chat/completions. Plain text runs on the real engine (chat-llama-5m); tool
 * calls and structured output run on the real HTTP server over a scripted engine, whose output is a known call
 * or JSON — the point there is the client round trip, not what a 5M model would choose.
 */
let real: RealServer;
let scripted: RunningServer;
let engine: ScriptedEngine;

const weatherTool = tool({
  description: 'The weather in a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, sky: 'sunny' }),
});

/** Calls the tool until a result is in the conversation, then answers from it. */
function script(spec: JobSpec): string {
  const prompt = Buffer.from(spec.promptIds).toString('utf8');
  if (spec.constraint?.type === 'json_schema' && spec.constraint.name !== undefined) return '{"title": "Rain in Paris", "people": ["Ana", "Bo"]}';
  if (prompt.includes('<tool_response>')) return `The sky is ${/"sky":"(\w+)"/.exec(prompt)?.[1] ?? 'unknown'} in Paris.`;
  return 'Let me look.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>';
}

beforeAll(async () => {
  real = await startShippedServer();
  engine = new ScriptedEngine({ script, contextLength: 8192, tokensPerStep: 5 });
  scripted = await listen(createApp({ engine, config: loadConfig([], {}) }), '127.0.0.1', 0);
});
afterAll(async () => {
  await scripted?.close(true);
  await real?.close();
});

const provider = (url: string) => createOpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-local' });

describe('Vercel AI SDK against the server', () => {
  for (const api of ['responses', 'chat'] as const) {
    it(`generateText and streamText (${api} API) give the same greedy text from the real model`, async () => {
      const p = provider(real.url);
      const model = api === 'chat' ? p.chat(SHIPPED_MODEL) : p(SHIPPED_MODEL);
      const args = { model, system: 'You answer questions about health.', prompt: 'What is a fever?', maxOutputTokens: 24, temperature: 0 };
      const once = await generateText(args);
      expect(once.text.length).toBeGreaterThan(0);
      expect(once.usage.outputTokens).toBeGreaterThan(0);
      const stream = streamText(args);
      let streamedText = '';
      for await (const piece of stream.textStream) streamedText += piece;
      expect(streamedText).toBe(once.text);
    });
  }

  for (const api of ['responses', 'chat'] as const) {
    it(`a tool call round trip (${api} API): the call, the tool's result sent back, the answer — streamed and not`, async () => {
      const p = provider(scripted.url);
      const model = api === 'chat' ? p.chat(SCRIPTED_MODEL) : p(SCRIPTED_MODEL);
      const args = { model, tools: { weather: weatherTool }, prompt: 'Weather in Paris?', stopWhen: stepCountIs(3), maxOutputTokens: 200 };
      const result = await generateText(args);
      expect(result.steps[0].toolCalls.map((c) => [c.toolName, c.input])).toEqual([['weather', { city: 'Paris' }]]);
      expect(result.steps[0].finishReason).toBe('tool-calls');
      expect(result.text).toBe('The sky is sunny in Paris.');

      const stream = streamText(args);
      const calls: unknown[] = [];
      for await (const part of stream.fullStream) if (part.type === 'tool-call') calls.push(part.input);
      expect(calls).toEqual([{ city: 'Paris' }]);
      expect(await stream.text).toBe('The sky is sunny in Paris.');
    });
  }

  it('generateObject with a zod schema sends it as a json_schema constraint and parses the object', async () => {
    const { object } = await generateObject({
      model: provider(scripted.url)(SCRIPTED_MODEL),
      schema: z.object({ title: z.string(), people: z.array(z.string()) }),
      schemaName: 'article',
      prompt: 'Extract the title and the people.',
    });
    expect(object).toEqual({ title: 'Rain in Paris', people: ['Ana', 'Bo'] });
    const constraint = engine.submitted.at(-1)!.constraint;
    expect(constraint).toMatchObject({ type: 'json_schema', name: 'article', schema: { type: 'object', required: ['title', 'people'] } });
  });
});
