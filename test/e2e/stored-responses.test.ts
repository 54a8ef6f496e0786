import { createOpenAI } from '@ai-sdk/openai';
import { generateText, type ModelMessage } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_SERVER_PRESENT, startRedis, type RedisProcess } from '../../bench/redis-process.js';
import { spawnServer, type SpawnedServer } from '../../bench/server-process.js';

/**
 * Stored responses outlive the process that answered: a real server process (the shipped chat-llama-5m) with a real
 * redis-server answers the first turn, is stopped, and a new process continues the conversation — by
 * `previous_response_id` from the official SDK, and by the AI SDK's two ways (item references to the earlier output,
 * which is its default, and its `previousResponseId` option). Each continuation must render exactly the conversation
 * a client would have sent whole.
 */
if (!REDIS_SERVER_PRESENT) console.warn('SKIPPED test/e2e/stored-responses.test.ts: redis-server is not installed (.ci/run installs it)');

const MODEL = 'chat-llama-5m';
const STARTUP_MS = 120_000;

describe.skipIf(!REDIS_SERVER_PRESENT)('stored responses across a server restart, through Redis', { timeout: 240_000 }, () => {
  let redis: RedisProcess;
  let server: SpawnedServer | undefined;
  const start = async () => {
    server = await spawnServer({
      model: 'models/chat-llama-5m',
      extraArgs: ['--model-id', MODEL, '--threads', '1', '--redis-url', redis.url],
      startupTimeoutMs: STARTUP_MS,
    });
    return server;
  };
  const restart = async () => {
    await server!.stop();
    return start();
  };

  beforeAll(async () => {
    redis = await startRedis();
    await start();
  }, STARTUP_MS);
  afterAll(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const sdk = () => new OpenAI({ baseURL: server!.baseUrl, apiKey: 'sk-local', maxRetries: 0 });
  const openai = (options: { fetch?: typeof fetch } = {}) => createOpenAI({ baseURL: server!.baseUrl, apiKey: 'sk-local', ...options });
  const ask = { model: MODEL, max_output_tokens: 16, temperature: 0 } as const;
  const settings = { maxOutputTokens: 16, temperature: 0 };
  const opening: ModelMessage[] = [{ role: 'user', content: 'Tell me a story about a cat.' }];
  const follow: ModelMessage = { role: 'user', content: 'What was the cat called?' };

  it('first turns by both clients, then a restart: openai continues by previous_response_id; the AI SDK by item references and by previousResponseId', async () => {
    const first = await sdk().responses.create({ ...ask, input: 'Tell me about a little dog.' });
    expect(first.output_text.length).toBeGreaterThan(0);
    const firstSdk = await generateText({ model: openai().responses(MODEL), messages: opening, ...settings });
    expect(firstSdk.text.length).toBeGreaterThan(0);
    // Both responses and their message items are in Redis.
    expect((await redis.client.keys('*:rec:*')).length).toBe(4);

    await restart();
    const second = await sdk().responses.create({ ...ask, input: 'What did the dog do next?', previous_response_id: first.id });
    expect(second.previous_response_id).toBe(first.id);
    const whole = await sdk().responses.create({
      ...ask,
      store: false,
      input: [
        { role: 'user', content: 'Tell me about a little dog.' },
        { role: 'assistant', content: first.output_text },
        { role: 'user', content: 'What did the dog do next?' },
      ],
    });
    expect(second.usage!.input_tokens).toBe(whole.usage!.input_tokens);
    expect(second.output_text).toBe(whole.output_text);
    // The chain goes on from the continued response, and store: false left nothing to continue.
    expect((await sdk().responses.create({ ...ask, input: 'And then?', previous_response_id: second.id })).usage!.input_tokens).toBeGreaterThan(second.usage!.input_tokens);
    await expect(sdk().responses.create({ ...ask, input: 'And then?', previous_response_id: whole.id })).rejects.toMatchObject({ status: 400, param: 'previous_response_id' });

    const sent: unknown[] = [];
    const spy: typeof fetch = async (url, init) => {
      sent.push(JSON.parse(String(init!.body)));
      return fetch(url, init);
    };
    const byReference = await generateText({ model: openai({ fetch: spy }).responses(MODEL), messages: [...opening, ...firstSdk.response.messages, follow], ...settings });
    expect(JSON.stringify(sent[0])).toContain('"item_reference"');
    const previousResponseId = firstSdk.providerMetadata!.openai.responseId as string;
    const byPrevious = await generateText({ model: openai().responses(MODEL), messages: [follow], providerOptions: { openai: { previousResponseId } }, ...settings });
    expect(byReference.text.length).toBeGreaterThan(0);
    expect(byPrevious.text).toBe(byReference.text);
    expect(byPrevious.usage.inputTokens).toBe(byReference.usage.inputTokens);
    expect(byReference.usage.inputTokens).toBeGreaterThan(firstSdk.usage.inputTokens! + firstSdk.usage.outputTokens!);
  });
});
