import { describe, expect, it } from 'vitest';
import { SseStream } from '../../src/server/sse.js';

describe('SseStream backpressure', () => {
  it('makes the writer wait once ~64 KB sit unread, and lets it go on as the client reads', async () => {
    const sse = new SseStream(() => {});
    const signal = new AbortController().signal;
    const event = { text: 'x'.repeat(1000) };
    let sent = 0;
    let waiting = false;
    while (!waiting && sent < 1000) {
      const ready = sse.ready(signal);
      waiting = await Promise.race([ready.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 20))]);
      if (!waiting) {
        sse.send(event);
        sent++;
      }
    }
    // Bounded: the writer stopped after about 64 KB, not 1,000 events (~1 MB).
    expect(waiting).toBe(true);
    expect(sent).toBeGreaterThan(50);
    expect(sent).toBeLessThan(80);
    const released = sse.ready(signal);
    const reader = sse.response.body!.getReader();
    for (let i = 0; i < 10; i++) await reader.read();
    await released;
  });

  it('an abort releases a waiting writer', async () => {
    const sse = new SseStream(() => {});
    const abort = new AbortController();
    for (let i = 0; i < 100; i++) sse.send({ text: 'x'.repeat(1000) });
    const waiting = sse.ready(abort.signal);
    abort.abort();
    await waiting;
  });
});
