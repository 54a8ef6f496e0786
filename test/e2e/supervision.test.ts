import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerEngine } from '../../src/engine/index.js';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/**
 * The engine's worker breaks under a running server (through the test-only fault hook, which the server built by
 * main.ts never enables): a crash mid-stream and a wedge (a step that never ends). Each time the client hears
 * about it (an SSE error event, a 504 from the request timeout on the main thread), /ready says 503 while a new
 * worker loads, and the server then serves again, losslessly.
 */
const TIMEOUT_MS = 3000;
const WATCHDOG_MS = 6000;
let server: RealServer;
const engineLog: string[] = [];

beforeAll(async () => {
  server = await startRealServer(
    ['--context-length', '512', '--max-tokens', '400', '--request-timeout-ms', String(TIMEOUT_MS), '--worker-watchdog-ms', String(WATCHDOG_MS)],
    { hooks: { faults: true }, engineLog: (m) => engineLog.push(m) },
  );
});
afterAll(async () => {
  await server?.close();
});

const PROMPT = 'Tell me a story about a lighthouse keeper.';

async function answer(lookahead: boolean): Promise<string> {
  const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 });
  const res = await client.chat.completions.create({
    model: server.modelId,
    messages: [{ role: 'user', content: PROMPT }],
    max_tokens: 48,
    temperature: 0,
    // @ts-expect-error the lookahead extension
    lookahead: { enabled: lookahead },
  });
  return res.choices[0].message.content ?? '';
}

async function ready(): Promise<{ status: number; body: { status: string } }> {
  const res = await fetch(`${server.url}/ready`);
  return { status: res.status, body: (await res.json()) as { status: string } };
}

async function waitReady(limitMs: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < limitMs) {
    if ((await ready()).status === 200) return performance.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not ready again within ${limitMs} ms`);
}

function stream(maxTokens: number): Promise<Response> {
  return fetch(`${server.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: server.modelId, messages: [{ role: 'user', content: PROMPT }], max_tokens: maxTokens, temperature: 0, stream: true, lookahead: { enabled: false } }),
  });
}

async function readAll(res: Response): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text;
    text += decoder.decode(value, { stream: true });
  }
}

describe('worker supervision', () => {
  let reference: string;

  it('answers the same with lookahead on and off before any fault', async () => {
    reference = await answer(false);
    expect(reference.length).toBeGreaterThan(0);
    expect(await answer(true)).toBe(reference);
  });

  it('a worker crash mid-stream ends the stream with an error event, /ready turns 503, and the server serves again losslessly', async () => {
    const res = await stream(400);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    (server.engine as WorkerEngine).injectFault('crash');
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).not.toContain('[DONE]');
    const last = JSON.parse(text.trim().split('\n\n').at(-1)!.slice('data: '.length)) as { error: { code: string; type: string; message: string } };
    expect(last.error.code).toBe('engine_restarting');
    expect(last.error.message).toMatch(/restarted/);

    const during = await ready();
    expect(during.status).toBe(503);
    expect(during.body.status).toBe('restarting');
    // New work meanwhile is refused with a retryable 503, not queued into a void.
    const refused = await new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-local', maxRetries: 0 }).chat.completions
      .create({ model: server.modelId, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(503);

    const reloadMs = await waitReady(90_000);
    console.log(`supervision: crash → serving again after ${reloadMs.toFixed(0)} ms`);
    expect(engineLog.some((l) => /engine worker crashed: injected worker crash; failing its 1 jobs/.test(l))).toBe(true);
    expect(await answer(false)).toBe(reference);
    expect(await answer(true)).toBe(reference);
    expect(server.engine.stats().restarts).toBe(1);
  });

  it('a wedged worker: the request still gets its 504 (stream: an error event) from the main thread, then the watchdog replaces the worker', async () => {
    (server.engine as WorkerEngine).injectFault('wedge');
    const started = performance.now();
    const [plain, streamed] = await Promise.all([
      fetch(`${server.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: server.modelId, messages: [{ role: 'user', content: PROMPT }], max_tokens: 8, temperature: 0 }),
      }),
      stream(8).then(readAll),
    ]);
    const elapsed = performance.now() - started;
    expect(plain.status).toBe(504);
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('request_timeout');
    expect(streamed).toMatch(/"code":"request_timeout"/);
    expect(elapsed).toBeLessThan(WATCHDOG_MS);

    // The watchdog fires WATCHDOG_MS after the wedge began.
    let state = '';
    for (let i = 0; i < 200 && state !== 'restarting'; i++) {
      state = (await ready()).body.status;
      if (state !== 'restarting') await new Promise((r) => setTimeout(r, 50));
    }
    expect(state).toBe('restarting');
    await waitReady(90_000);
    expect(engineLog.some((l) => /engine worker is wedged: .* past the 6000 ms watchdog/.test(l))).toBe(true);
    expect(await answer(false)).toBe(reference);
    expect(await answer(true)).toBe(reference);
    expect(server.engine.stats().restarts).toBe(2);
  });
});
