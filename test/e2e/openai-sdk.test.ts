import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/engine/types.js';
import { AbortedError } from '../../src/errors.js';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/**
 * The real server on the real engine (embedded synthetic default model), talked to by the official SDK.
 * The synthetic model's output is noise, but it is deterministic noise: greedy runs must agree with each other.
 */
const CONTEXT = 256;
/** Long enough that an abort after two chunks lands well before the end, even on this fast model. */
const ABORTED_MAX_TOKENS = 160;
let server: RealServer;
let client: OpenAI;
let model: string;

beforeAll(async () => {
  server = await startRealServer(['--context-length', String(CONTEXT), '--max-tokens', String(ABORTED_MAX_TOKENS)]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 });
  model = server.modelId;
});
afterAll(async () => {
  await server?.close();
});

const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
  { role: 'system', content: 'You answer briefly.' },
  { role: 'user', content: 'Name three colours of the rainbow.' },
];

async function greedy(maxTokens = 24): Promise<OpenAI.Chat.ChatCompletion> {
  return client.chat.completions.create({ model, messages, max_tokens: maxTokens, temperature: 0 });
}

async function runningJobs(): Promise<number> {
  return ((await (await fetch(`${server.baseURL}/lookahead/stats`)).json()) as { running: number }).running;
}

describe('OpenAI SDK against the real server', () => {
  it('lists and retrieves the served model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toContain(model);
    expect((await client.models.retrieve(model)).id).toBe(model);
  });

  it('answers a chat completion with consistent usage', async () => {
    const res = await greedy();
    expect(res.object).toBe('chat.completion');
    expect(res.choices).toHaveLength(1);
    expect(typeof res.choices[0].message.content).toBe('string');
    expect(['stop', 'length']).toContain(res.choices[0].finish_reason);
    const usage = res.usage!;
    expect(usage.prompt_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeLessThanOrEqual(24);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    const lookahead = (res as unknown as { lookahead: { steps: number; tokens_per_step: number } }).lookahead;
    expect(lookahead.steps).toBeGreaterThanOrEqual(0);
    if (res.choices[0].finish_reason === 'length') expect(usage.completion_tokens).toBe(24);
  });

  it('reports the prompt tokens a request took from the prefix cache in usage.prompt_tokens_details', async () => {
    const system = { role: 'system' as const, content: 'You answer in one line, and only about the planets of the solar system.' };
    const ask = (content: string) => client.chat.completions.create({ model, messages: [system, { role: 'user', content }], max_tokens: 8, temperature: 0 });
    const first = await ask('Which planet is largest?');
    // Earlier tests' prompts share the template's start at most, not this system prompt.
    expect(first.usage!.prompt_tokens_details!.cached_tokens!).toBeLessThan(system.content.length);
    const second = await ask('Which planet is smallest?');
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    // The system prompt and the template around it came from the first request's rows; the new question did not.
    expect(cached).toBeGreaterThan(system.content.length);
    expect(cached).toBeLessThan(second.usage!.prompt_tokens);
    const metrics = await (await fetch(new URL('/metrics', server.baseURL))).text();
    const total = Number(/lookahead_prompt_cached_tokens_total\{model="[^"]+"\} (\d+)/.exec(metrics)?.[1]);
    expect(total).toBeGreaterThanOrEqual(cached);
  });

  it('streams the same text as the non-streaming greedy answer, with include_usage', async () => {
    const reference = await greedy();
    const stream = await client.chat.completions.create({
      model, messages, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe(reference.choices[0].message.content);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBe(reference.usage?.completion_tokens);
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe(reference.choices[0].finish_reason);
  });

  it('answers legacy completions', async () => {
    const res = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
    expect(res.object).toBe('text_completion');
    expect(typeof res.choices[0].text).toBe('string');
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    const again = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
    expect(again.choices[0].text).toBe(res.choices[0].text);
  });

  it('runs n=2 as two choices', async () => {
    const res = await client.chat.completions.create({ model, messages, max_tokens: 8, n: 2, temperature: 0 });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(res.choices[1].message.content).toBe(res.choices[0].message.content);
  });

  it('cuts at a stop string that spans several tokens', async () => {
    const res = await client.chat.completions.create({ model, messages, max_tokens: 40, temperature: 0, logprobs: true });
    const text = res.choices[0].message.content!;
    const tokens = res.choices[0].logprobs!.content!.map((t) => t.token);
    // A stop starting inside one token and ending inside a later one; its first occurrence decides the cut.
    let stop = '';
    for (let i = 2; i + 2 < tokens.length && !stop; i++) {
      const candidate = tokens[i].slice(-1) + tokens[i + 1] + tokens[i + 2].slice(0, 1);
      if (tokens[i].length > 0 && tokens[i + 2].length > 0 && !candidate.includes('\uFFFD') && text.includes(candidate) && candidate.trim()) stop = candidate;
    }
    expect(stop, `no multi-token stop candidate in ${JSON.stringify(tokens)}`).not.toBe('');
    const cut = await client.chat.completions.create({ model, messages, max_tokens: 40, temperature: 0, stop: [stop, 'never-appears-xyz'] });
    expect(cut.choices[0].message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(cut.choices[0].finish_reason).toBe('stop');
  });

  it('reports logprobs with top alternatives', async () => {
    const res = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = res.choices[0].logprobs!.content!;
    expect(content).toHaveLength(res.usage!.completion_tokens);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(3);
      // Greedy picks the most likely token, so it leads the alternatives.
      expect(t.logprob).toBeCloseTo(t.top_logprobs[0].logprob, 4);
    }
  });

  it('reproduces a sampled answer with the same seed', async () => {
    const ask = () => client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 1, top_p: 0.95, seed: 1234 });
    const [a, b] = [await ask(), await ask()];
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
  });

  it('raises the SDK error classes', async () => {
    await expect(client.chat.completions.create({ model, messages, temperature: 5 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(client.chat.completions.create({ model: 'no-such-model', messages })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.models.retrieve('no-such-model')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const err = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'word '.repeat(2000) }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
  });

  it('cancels the job when the client aborts mid-stream, then serves the next request', async () => {
    // Watch the real engine's jobs to see how this one ends.
    const engine = server.engine;
    const jobs: Job[] = [];
    const submit = engine.submit.bind(engine);
    engine.submit = (id, spec) => {
      const job = submit(id, spec);
      jobs.push(job);
      return job;
    };
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model, messages, max_tokens: ABORTED_MAX_TOKENS, temperature: 0, stream: true },
      { signal: controller.signal },
    );
    let seen = 0;
    let finished = false;
    try {
      // The SDK ends the iteration quietly (or throws) once its request is aborted.
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content && ++seen === 2) controller.abort();
        if (chunk.choices[0]?.finish_reason) finished = true;
      }
    } catch {}
    expect(controller.signal.aborted).toBe(true);
    expect(finished).toBe(false);
    const deadline = Date.now() + 10_000;
    while ((await runningJobs()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await runningJobs()).toBe(0);
    engine.submit = submit;
    expect(jobs).toHaveLength(1);
    // Cancelled, not run to its budget: the result rejects with AbortedError.
    await expect(jobs[0].result).rejects.toBeInstanceOf(AbortedError);
    expect((await greedy(4)).choices[0].message.content).toBeTypeOf('string');
  });
});

describe('bad input over raw HTTP', () => {
  const post = (body: string, path = '/chat/completions') =>
    fetch(`${server.baseURL}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const chat = (extra: object) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });

  const cases: [string, () => string, number][] = [
    ['malformed JSON', () => '{"model": "x", ', 400],
    ['wrong types', () => JSON.stringify({ model, messages: [{ role: 'user', content: 42 }] }), 400],
    ['empty messages', () => chat({ messages: [] }), 400],
    ['an unknown role', () => chat({ messages: [{ role: 'robot', content: 'x' }] }), 400],
    ['n=0', () => chat({ n: 0 }), 400],
    ['max_tokens=-1', () => chat({ max_tokens: -1 }), 400],
    ['temperature=5', () => chat({ temperature: 5 }), 400],
    ['five stop strings', () => chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400],
    ['a prompt longer than the context', () => chat({ messages: [{ role: 'user', content: 'word '.repeat(2000) }] }), 400],
    ['a 10 MB body', () => chat({ messages: [{ role: 'user', content: 'x'.repeat(10 * 1024 * 1024) }] }), 413],
  ];
  for (const [name, body, status] of cases) {
    it(`answers ${name} with ${status} JSON and keeps serving`, async () => {
      const res = await post(body());
      expect(res.status).toBe(status);
      const json = (await res.json()) as { error: { message: string; type: string } };
      expect(json.error.type).toBe('invalid_request_error');
      expect(json.error.message.length).toBeGreaterThan(0);
      const next = await post(chat({}));
      expect(next.status).toBe(200);
    });
  }
});
