import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createUpstream, UpstreamError } from '../../src/server/upstream.js';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/**
 * An upstream configured with credentials in its URL, failing in every way an upstream can: the password must
 * never appear in a response body or a log line; a timeout is a 504; a stream cut mid-way ends with an SSE error
 * event. The upstream is a real HTTP server on loopback that checks the credentials arrive as Basic auth.
 */
const SECRET = 's3cr3t-pass';
const seenAuth: string[] = [];
let upstream: Server;
let upstreamUrl: string;
let front: RealServer;
const logLines: string[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  seenAuth.push(req.headers.authorization ?? '');
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    if (req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'remote-ok', object: 'model', created: 0, owned_by: 'x' }] }));
      return;
    }
    const model = (JSON.parse(body) as { model: string }).model;
    if (model === 'remote-hang') return; // never answers
    if (model === 'remote-cut') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'partial' }, finish_reason: null }] })}\n\n`);
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 0, model, choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] }));
  });
}

beforeAll(async () => {
  upstream = createServer(handle);
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://user:${SECRET}@127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  front = await startRealServer(['--upstream', upstreamUrl, '--upstream-timeout-ms', '1500', '--context-length', '128'], {
    log: pino({ level: 'trace' }, sink),
    engineLog: (m) => logLines.push(m),
  });
});
afterAll(async () => {
  await front?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
});

const bodies: string[] = [];

async function chat(model: string, stream = false): Promise<{ status: number; text: string }> {
  const res = await fetch(`${front.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }], stream }),
  });
  const text = await res.text();
  bodies.push(text);
  return { status: res.status, text };
}

describe('upstream failures', () => {
  it('sends the URL credentials as Basic auth, not in the URL', async () => {
    expect((await chat('remote-ok')).status).toBe(200);
    expect(seenAuth.at(-1)).toBe(`Basic ${Buffer.from(`user:${SECRET}`).toString('base64')}`);
  });

  it('an upstream that does not answer in time is a 504', async () => {
    const { status, text } = await chat('remote-hang');
    expect(status).toBe(504);
    expect(JSON.parse(text).error.code).toBe('upstream_timeout');
  });

  it('a stream the upstream cuts mid-way ends with an SSE error event', async () => {
    const { status, text } = await chat('remote-cut', true);
    expect(status).toBe(200);
    expect(text).toContain('partial');
    const last = JSON.parse(text.trim().split('\n\n').at(-1)!.slice('data: '.length)) as { error: { code: string } };
    expect(last.error.code).toBe('upstream_unavailable');
  });

  it('an unreachable upstream names the host, not the password', async () => {
    const config = loadConfig(['--upstream', `http://user:${SECRET}@127.0.0.1:1/v1`], {}).upstream;
    const err = await createUpstream(config)!
      .forward(new Request('http://front/v1/chat/completions', { method: 'POST' }), 'chat/completions', '{}')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as Error).message).toContain('http://127.0.0.1:1/v1');
    expect((err as Error).message).not.toContain(SECRET);
    const listed = await fetch(`${front.baseURL}/models`);
    bodies.push(await listed.text());
  });

  it('the password is in no response body and no log line', () => {
    expect(bodies.length).toBeGreaterThanOrEqual(4);
    expect(logLines.length).toBeGreaterThan(0);
    for (const text of [...bodies, ...logLines]) expect(text).not.toContain(SECRET);
  });
});
