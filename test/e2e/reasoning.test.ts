import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyntheticSource } from '../../src/model/builder/sources/synthetic.js';
import { FAMILIES } from '../helpers/families.js';
import { startRealServer, type RealServer } from '../helpers/real-server.js';
import { writeFamilyHfDir } from '../unit/gguf-model-writer.js';
import { byteLevelTokenizerJson } from '../unit/tokenizer-fixtures.js';

/**
 * Thinking on the real engine: a tiny random Qwen3-family model whose chat template opens the think block in the
 * generation prompt (as Qwen3-Thinking's does), so everything the model says until `</think>` is thinking. The
 * official SDK reads the split from chat (`reasoning_content`, streamed and not) and from Responses (a reasoning
 * item). Random weights never close the block themselves: the route tests (test/unit/reasoning.test.ts) cover a
 * block that closes mid-answer.
 */
const THINK = 320 - 2;
const END_THINK = 320 - 1;
/** ChatML with Qwen3's switch: thinking opened for the answer unless enable_thinking is false. */
const TEMPLATE =
  "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% else %}{{ '<think>\\n' }}{% endif %}{% endif %}";

function writeThinkingModel(dir: string): void {
  const family = FAMILIES.find((f) => f.name === 'qwen3')!;
  writeFamilyHfDir(dir, family, new SyntheticSource(family.config, 7));
  const tokenizer = byteLevelTokenizerJson() as { added_tokens: object[]; model: { vocab: Record<string, number> } };
  // Every id the model can emit decodes to text: the ids between the fixture's merges and the specials are pieces.
  for (let id = Object.keys(tokenizer.model.vocab).length; id < THINK - 2; id++) tokenizer.model.vocab[`p${id}`] = id;
  for (const [id, content, special] of [
    [THINK - 2, '<|im_start|>', true],
    [THINK - 1, '<|im_end|>', true],
    [THINK, '<think>', false],
    [END_THINK, '</think>', false],
  ] as const) {
    tokenizer.model.vocab[content] = id;
    tokenizer.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  }
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: null, eos_token: '<|im_end|>', chat_template: TEMPLATE }));
}

const MODEL = 'qwen3-thinking-tiny';
let dir: string;
let server: RealServer;
let client: OpenAI;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'thinking-model-'));
  writeThinkingModel(dir);
  server = await startRealServer(['--model', dir, '--model-id', MODEL]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 });
}, 120_000);
afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Thinking = { reasoning_content?: string | null; reasoning?: string | null };
const ask = { model: MODEL, messages: [{ role: 'user' as const, content: 'Why is the sky blue?' }], max_tokens: 24, temperature: 0 };

describe('reasoning split on a thinking Qwen3-family model', () => {
  it('chat: the thinking goes to reasoning_content and reasoning, counted as reasoning_tokens; streamed deltas add up to it', async () => {
    const plain = await client.chat.completions.create(ask);
    const message = plain.choices[0].message as typeof plain.choices[0]['message'] & Thinking;
    expect(message.reasoning_content!.length).toBeGreaterThan(0);
    expect(message.reasoning).toBe(message.reasoning_content);
    expect(message.content).toBe('');
    // The block never closed: every generated token was thinking.
    expect(plain.usage!.completion_tokens_details!.reasoning_tokens).toBe(plain.usage!.completion_tokens);

    const stream = await client.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
    let reasoning = '';
    let content = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as (OpenAI.Chat.ChatCompletionChunk.Choice.Delta & Thinking) | undefined;
      reasoning += delta?.reasoning_content ?? '';
      content += delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(reasoning).toBe(message.reasoning_content);
    expect(content).toBe('');
    expect(usage!.completion_tokens_details!.reasoning_tokens).toBe(plain.usage!.completion_tokens);
  });

  it('lookahead drafts inside thinking and changes nothing: the thinking is identical with lookahead on and off', async () => {
    const base = { ...ask, max_tokens: 40 };
    const off = await client.chat.completions.create({ ...base, lookahead: { enabled: false } } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    // The same question again with a session: the first answer is in the session trie to draft from.
    const on = await client.chat.completions.create(base, { headers: { 'X-Session-Id': 'thinking' } });
    const again = await client.chat.completions.create(base, { headers: { 'X-Session-Id': 'thinking' } });
    const thought = (r: OpenAI.Chat.ChatCompletion) => (r.choices[0].message as Thinking).reasoning_content;
    expect(thought(on)).toBe(thought(off));
    expect(thought(again)).toBe(thought(off));
    expect((again as unknown as { lookahead: { accepted_tokens: number } }).lookahead.accepted_tokens).toBeGreaterThan(0);
  });

  it('reasoning_effort "none" turns thinking off through the template (enable_thinking false): no reasoning, all content', async () => {
    const off = await client.chat.completions.create({ ...ask, reasoning_effort: 'none' } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    const message = off.choices[0].message as typeof off.choices[0]['message'] & Thinking;
    expect(message.reasoning_content).toBeNull();
    expect(message.content!.length).toBeGreaterThan(0);
    expect(off.usage!.completion_tokens_details!.reasoning_tokens).toBe(0);
    // The closed block is in the prompt: more prompt tokens than with thinking on.
    const on = await client.chat.completions.create(ask);
    expect(off.usage!.prompt_tokens).toBeGreaterThan(on.usage!.prompt_tokens);
    await expect(client.chat.completions.create({ ...ask, reasoning_effort: 'extreme' } as never)).rejects.toMatchObject({ status: 400, param: 'reasoning_effort' });
  });

  it('Responses: a reasoning output item (streamed as reasoning_text deltas), reasoning_tokens; reasoning.effort none turns it off', async () => {
    const input = 'Why is the sky blue?';
    const plain = await client.responses.create({ model: MODEL, input, max_output_tokens: 24, temperature: 0 });
    const item = plain.output[0] as OpenAI.Responses.ResponseReasoningItem;
    expect(item.type).toBe('reasoning');
    expect(item.content![0].text.length).toBeGreaterThan(0);
    expect(plain.usage!.output_tokens_details.reasoning_tokens).toBe(plain.usage!.output_tokens);
    const chat = await client.chat.completions.create({ ...ask, max_tokens: 24 });
    expect(item.content![0].text).toBe((chat.choices[0].message as Thinking).reasoning_content);

    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of await client.responses.create({ model: MODEL, input, max_output_tokens: 24, temperature: 0, stream: true })) events.push(e);
    const deltas = events.flatMap((e) => (e.type === 'response.reasoning_text.delta' ? [e.delta] : []));
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.join('')).toBe(item.content![0].text);
    expect(events.map((e) => e.type)).toContain('response.reasoning_text.done');

    const none = await client.responses.create({ model: MODEL, input, max_output_tokens: 24, temperature: 0, reasoning: { effort: 'none' } } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(none.output.map((o) => o.type)).toEqual(['message']);
    expect(none.usage!.output_tokens_details.reasoning_tokens).toBe(0);
  });
});
