import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on loopback that speaks enough of the OpenAI streaming protocol to exercise the bench
 * harness: SSE chunks, a final usage chunk with our `lookahead` block, /metrics, and scripted failures.
 * With `lookahead.enabled` in the body it streams two tokens per chunk and reports 2 tokens per step.
 */
export interface FakeServerOptions {
  tokens?: number;
  chunkDelayMs?: number;
  /** ok: normal; http500: every chat request fails; stream_error: an error event mid-stream; hang: never answers. */
  mode?: 'ok' | 'http500' | 'stream_error' | 'hang';
  /** Answer every n-th chat request with HTTP 503 (a flaky server). */
  failEvery?: number;
  /** Omit our extensions, like a stock OpenAI-compatible server. */
  plain?: boolean;
}

export interface FakeServer {
  baseUrl: string;
  bodies: Record<string, unknown>[];
  /** The Authorization header of each chat request, in the order of `bodies`. */
  authorizations: (string | null)[];
  documents: string[];
  close(): Promise<void>;
}

export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const tokens = options.tokens ?? 8;
  const delay = options.chunkDelayMs ?? 1;
  const bodies: Record<string, unknown>[] = [];
  const authorizations: (string | null)[] = [];
  const documents: string[] = [];
  const hanging = new Set<ServerResponse>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model' }] });
    if (req.method === 'GET' && url === '/health') return json(res, 200, { status: 'ok' });
    if (req.method === 'GET' && url === '/metrics' && !options.plain) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`# HELP process_resident_memory_bytes rss\nprocess_resident_memory_bytes ${process.memoryUsage().rss}\n`);
      return;
    }
    if (req.method === 'POST' && url === '/v1/lookahead/documents' && !options.plain) {
      const body = JSON.parse(await readBody(req)) as { documents: string[] };
      documents.push(...body.documents);
      return json(res, 200, { accepted: body.documents.length });
    }
    if (req.method !== 'POST' || url !== '/v1/chat/completions') return json(res, 404, { error: { message: 'not found', type: 'not_found_error' } });

    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    bodies.push(body);
    authorizations.push(req.headers.authorization ?? null);
    if (options.failEvery && bodies.length % options.failEvery === 0) return json(res, 503, { error: { message: 'flaky', type: 'server_error' } });
    if (options.mode === 'http500') return json(res, 500, { error: { message: 'scripted failure', type: 'server_error' } });
    if (options.mode === 'hang') {
      hanging.add(res);
      return;
    }
    const lookahead = !options.plain && (body.lookahead as { enabled?: boolean } | undefined)?.enabled === true;
    const perChunk = lookahead ? 2 : 1;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (obj: unknown): boolean => res.write(`data: ${JSON.stringify(obj)}\n\n`);
    const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 0, model: body.model };
    send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    let sent = 0;
    while (sent < tokens) {
      await new Promise((r) => setTimeout(r, delay));
      const n = Math.min(perChunk, tokens - sent);
      send({ ...base, choices: [{ index: 0, delta: { content: ' tok'.repeat(n) }, finish_reason: null }] });
      sent += n;
      if (options.mode === 'stream_error' && sent >= tokens / 2) {
        send({ error: { message: 'scripted mid-stream failure', type: 'server_error' } });
        res.end();
        return;
      }
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'length' }] });
    const steps = Math.ceil(tokens / perChunk);
    const usage = {
      prompt_tokens: 10,
      completion_tokens: tokens,
      total_tokens: 10 + tokens,
      ...(options.plain ? {} : { completion_tokens_details: { accepted_prediction_tokens: lookahead ? tokens - steps : 0, rejected_prediction_tokens: 0 } }),
    };
    const block = { steps, draft_tokens: lookahead ? steps * 3 : 0, accepted_tokens: tokens - steps, tokens_per_step: tokens / steps, draft_seconds: 0.001, accepted_by_position: lookahead ? [tokens - steps] : [] };
    send({ ...base, choices: [], usage, ...(options.plain ? {} : { lookahead: block }) });
    res.write('data: [DONE]\n\n');
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => json(res, 500, { error: { message: err.message, type: 'server_error' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    bodies,
    authorizations,
    documents,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
