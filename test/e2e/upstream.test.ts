import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/** Two real instances on loopback: the front one forwards what it does not serve to the back one. */
let back: RealServer;
let front: RealServer;
const remoteModel = 'remote-synthetic';

beforeAll(async () => {
  back = await startRealServer(['--model-id', remoteModel, '--context-length', '256']);
  front = await startRealServer(['--upstream', back.baseURL, '--context-length', '256']);
});
afterAll(async () => {
  await front?.close();
  await back?.close();
});

describe('upstream passthrough', () => {
  it('lists local and upstream models', async () => {
    const client = new OpenAI({ baseURL: front.baseURL, apiKey: 'sk-local', maxRetries: 0 });
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toContain(front.modelId);
    expect(ids).toContain(remoteModel);
    expect((await client.models.retrieve(remoteModel)).id).toBe(remoteModel);
  });

  it('answers a remote model exactly as the upstream does', async () => {
    const ask = (baseURL: string) =>
      new OpenAI({ baseURL, apiKey: 'sk-local', maxRetries: 0 }).chat.completions.create({
        model: remoteModel, messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 12, temperature: 0,
      });
    const [direct, proxied] = [await ask(back.baseURL), await ask(front.baseURL)];
    expect(proxied.choices[0].message.content).toBe(direct.choices[0].message.content);
    expect(proxied.model).toBe(remoteModel);
    expect(back.engine.stats().totals.jobs).toBe(2);
    expect(front.engine.stats().totals.jobs).toBe(0);
  });

  it('pipes a streamed response through chunk by chunk', async () => {
    const res = await fetch(`${front.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // Long enough to span many of the worker's 20 ms token batches: the synthetic model decodes 48 tokens in ~60 ms.
      body: JSON.stringify({ model: remoteModel, messages: [{ role: 'user', content: 'Tell a story.' }], max_tokens: 200, temperature: 0, stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const arrivals: { at: number; text: string }[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push({ at: performance.now(), text: decoder.decode(value, { stream: true }) });
    }
    const all = arrivals.map((a) => a.text).join('');
    expect(all.trimEnd().endsWith('data: [DONE]')).toBe(true);
    // Not buffered: the body arrived in several reads spread over the generation, not in one piece at the end.
    expect(arrivals.length).toBeGreaterThan(3);
    expect(arrivals.at(-1)!.at - arrivals[0].at).toBeGreaterThan(0);
    const firstEventRead = arrivals.findIndex((a) => a.text.includes('data: '));
    expect(firstEventRead).toBeLessThan(arrivals.length - 1);
  });

  it('keeps the upstream error status and body', async () => {
    const client = new OpenAI({ baseURL: front.baseURL, apiKey: 'sk-local', maxRetries: 0 });
    const err = await client.chat.completions
      .create({ model: remoteModel, messages: [{ role: 'user', content: 'x' }], temperature: 5 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    const missing = await client.chat.completions.create({ model: 'nowhere', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });
});
