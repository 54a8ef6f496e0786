import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARED_DATA } from '../helpers/paths.js';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/** A real trained chat model behind the real server: its greedy answers must match the PyTorch reference. */
const MODEL_DIR = join(SHARED_DATA, 'models/chat-llama-5m');
const present = existsSync(`${MODEL_DIR}/config.json`);
if (!present) console.warn(`SKIPPED test/e2e/chat-llama.test.ts: ${MODEL_DIR} is absent`);

interface ReferenceCase {
  prompt_text: string;
  output_ids: number[];
  text: string;
}

describe.skipIf(!present)('chat-llama-5m through the OpenAI SDK', () => {
  let server: RealServer;
  let client: OpenAI;
  const cases: ReferenceCase[] = present ? (JSON.parse(readFileSync(`${MODEL_DIR}/greedy_reference.json`, 'utf8')) as { cases: ReferenceCase[] }).cases : [];

  beforeAll(async () => {
    server = await startRealServer(['--model', MODEL_DIR, '--model-id', 'chat-llama-5m']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });

  /** The reference prompts are rendered ChatML; turning them back into messages exercises the chat template. */
  function messagesOf(promptText: string): OpenAI.Chat.ChatCompletionMessageParam[] {
    return [...promptText.matchAll(/<\|im_start\|>(\w+)\n([\s\S]*?)<\|im_end\|>\n/g)].map(
      (m) => ({ role: m[1], content: m[2] }) as OpenAI.Chat.ChatCompletionMessageParam,
    );
  }

  it('serves the model under its id', async () => {
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(['chat-llama-5m']);
  });

  it('answers each reference prompt with the reference greedy text (lookahead on)', async () => {
    let drafted = 0;
    for (const c of cases) {
      const res = await client.chat.completions.create({ model: 'chat-llama-5m', messages: messagesOf(c.prompt_text), max_tokens: 64, temperature: 0 });
      expect(res.choices[0].message.content).toBe(c.text.replace(/<\|im_end\|>$/, ''));
      expect(res.choices[0].finish_reason).toBe(c.text.endsWith('<|im_end|>') ? 'stop' : 'length');
      // No prediction sent: OpenAI's prediction counts stay 0; the lookahead block has the drafting totals.
      expect(res.usage!.completion_tokens_details).toMatchObject({ accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 });
      drafted += (res as unknown as { lookahead: { draft_tokens: number } }).lookahead.draft_tokens;
    }
    expect(drafted).toBeGreaterThan(0);
  });

  it('refuses an empty completions prompt (its tokenizer has no BOS) with a 400 naming prompt', async () => {
    const error = await client.completions.create({ model: 'chat-llama-5m', prompt: '', max_tokens: 4 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', param: 'prompt' });
    expect((error as { code: unknown }).code).not.toBe('context_length_exceeded');
  });

  it('streams the same greedy text, with prediction and a session id', async () => {
    const c = cases[0];
    const expected = c.text.replace(/<\|im_end\|>$/, '');
    const stream = await client.chat.completions.create(
      {
        model: 'chat-llama-5m', messages: messagesOf(c.prompt_text), max_tokens: 64, temperature: 0,
        stream: true, stream_options: { include_usage: true }, prediction: { type: 'content', content: expected },
      },
      { headers: { 'X-Session-Id': 'e2e-session' } },
    );
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(expected);
    // The prediction was the answer itself: most of the answer came from accepted drafts.
    expect(usage!.completion_tokens_details!.accepted_prediction_tokens).toBeGreaterThan(usage!.completion_tokens / 2);
    expect(usage!.completion_tokens_details!.rejected_prediction_tokens).toBeGreaterThanOrEqual(0);
  });
});
