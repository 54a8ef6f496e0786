import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_MODEL, startShippedServer, type RealServer } from '../helpers/real-server.js';

/**
 * What evaluation harnesses and benchmark clients send besides chat: completions `echo` with prompt logprobs (lm-eval's
 * loglikelihood requests, `max_tokens` 0 or more) and vLLM's `ignore_eos`, on the shipped model (a trained one, so it
 * does end its answers with EOS).
 */
let server: RealServer;
let client: OpenAI;

beforeAll(async () => {
  server = await startShippedServer();
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
});

async function tokenize(prompt: string): Promise<number[]> {
  const res = await fetch(`${server.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: SHIPPED_MODEL, prompt }) });
  return ((await res.json()) as { tokens: number[] }).tokens;
}

type Logprobs = { tokens: string[]; token_logprobs: (number | null)[]; top_logprobs: (Record<string, number> | null)[]; text_offset: number[] };

describe('completions echo', () => {
  const prompt = 'def add(a, b):\n    return';

  it('scores the prompt from the prefill: the logprobs greedy decoding gave its own tokens, the first null', async () => {
    const greedy = await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 8, temperature: 0, logprobs: 2 });
    const generated = (greedy.choices[0].logprobs as Logprobs).token_logprobs as number[];
    const whole = prompt + greedy.choices[0].text;
    const ids = await tokenize(whole);
    // The greedy text tokenizes back to the same tokens (so the echoed prompt is the decoded sequence itself).
    expect(ids).toHaveLength(greedy.usage!.prompt_tokens + greedy.usage!.completion_tokens);

    const echoed = await client.completions.create({ model: SHIPPED_MODEL, prompt: ids, max_tokens: 0, echo: true, logprobs: 2, temperature: 0 });
    const choice = echoed.choices[0];
    expect(choice.text).toBe(whole);
    expect(echoed.usage!.completion_tokens).toBe(0);
    expect(choice.finish_reason).toBe('length');
    const lp = choice.logprobs as Logprobs;
    expect(lp.tokens).toHaveLength(ids.length);
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.top_logprobs[0]).toBeNull();
    expect(lp.token_logprobs.slice(1).every((v) => typeof v === 'number' && v <= 0)).toBe(true);
    expect(lp.top_logprobs.slice(1).every((t) => Object.keys(t!).length >= 1)).toBe(true);
    // The answer's tokens, scored inside the prompt, carry the logprobs decoding gave them (to float noise).
    const scored = lp.token_logprobs.slice(greedy.usage!.prompt_tokens) as number[];
    expect(scored).toHaveLength(generated.length);
    scored.forEach((v, i) => expect(v).toBeCloseTo(generated[i], 3));
  });

  it('echoes the prompt before a completion, logprobs for both', async () => {
    const res = await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 4, echo: true, logprobs: 0, temperature: 0 });
    const plain = await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 4, temperature: 0 });
    expect(res.choices[0].text).toBe(prompt + plain.choices[0].text);
    const lp = res.choices[0].logprobs as Logprobs;
    expect(lp.tokens).toHaveLength(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    expect(lp.text_offset[0]).toBe(0);
    expect([...lp.text_offset].sort((a, b) => a - b)).toEqual(lp.text_offset);
  });

  it('streams the echoed prompt first', async () => {
    const plain = await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 4, temperature: 0 });
    let text = '';
    let first = '';
    for await (const chunk of await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 4, temperature: 0, echo: true, stream: true })) {
      if (!first) first = chunk.choices[0]?.text ?? '';
      text += chunk.choices[0]?.text ?? '';
    }
    expect(first).toBe(prompt);
    expect(text).toBe(prompt + plain.choices[0].text);
  });

  it('refuses max_tokens 0 without echo, and echo with logprobs on a stream', async () => {
    const zero = (await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 0 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(zero.status).toBe(400);
    expect(zero.param).toBe('max_tokens');
    const stream = (await client.completions.create({ model: SHIPPED_MODEL, prompt, echo: true, logprobs: 1, stream: true }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(stream.status).toBe(400);
    expect(stream.param).toBe('echo');
  });
});

describe('ignore_eos', () => {
  it('runs past EOS to max_tokens on chat and completions, the text before EOS unchanged', async () => {
    const messages = [{ role: 'user' as const, content: 'Name a colour.' }];
    const stopped = await client.chat.completions.create({ model: SHIPPED_MODEL, messages, max_tokens: 200, temperature: 0 });
    expect(stopped.choices[0].finish_reason).toBe('stop');
    const n = stopped.usage!.completion_tokens;
    expect(n).toBeLessThan(200);
    const body = { model: SHIPPED_MODEL, messages, max_tokens: n + 8, temperature: 0, ignore_eos: true };
    const ran = await client.chat.completions.create(body as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    expect(ran.choices[0].finish_reason).toBe('length');
    expect(ran.usage!.completion_tokens).toBe(n + 8);
    expect(ran.choices[0].message.content!.startsWith(stopped.choices[0].message.content!)).toBe(true);

    const prompt = `<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n`;
    const plain = await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 200, temperature: 0 });
    expect(plain.choices[0].finish_reason).toBe('stop');
    const forced = await client.completions.create({ model: SHIPPED_MODEL, prompt, max_tokens: 200, temperature: 0, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(forced.usage!.completion_tokens).toBe(200);
    expect(forced.choices[0].finish_reason).toBe('length');
  });
});
