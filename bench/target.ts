import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import type { Target } from './client.js';
import { classify, describe } from './client.js';
import { BenchError } from './errors.js';

const ADMIN_TIMEOUT_MS = 10_000;

/**
 * Turns `--base-url` into a Target. Loopback only unless the operator opts in, so a typo cannot point a load
 * test at someone else's server. Both `http://host:port` and `http://host:port/v1` are accepted.
 */
export function resolveTarget(baseUrl: string, opts: { allowRemote: boolean; apiKey: string | null; requestTimeoutMs: number; connections: number }): Target {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new BenchError(`--base-url ${JSON.stringify(baseUrl)} is not a URL (expected e.g. http://127.0.0.1:8000/v1)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BenchError(`--base-url must be http(s), got ${url.protocol}`);
  if (!opts.allowRemote && !isLoopback(url.hostname)) {
    throw new BenchError(`--base-url ${url.host} is not a loopback address; pass --allow-remote to load-test another host`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  return {
    apiBase: `${url.origin}${path.endsWith('/v1') ? path : `${path}/v1`}`,
    origin: url.origin,
    apiKey: opts.apiKey,
    // One connection per concurrent request, so the client never queues behind itself.
    dispatcher: new Agent({ connections: opts.connections, connectTimeout: 5_000, headersTimeout: opts.requestTimeoutMs, bodyTimeout: opts.requestTimeoutMs }),
    requestTimeoutMs: opts.requestTimeoutMs,
  };
}

export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

export interface HttpResult {
  status: number;
  text: string;
}

/** A small bounded request for admin and discovery endpoints. Connection failures throw BenchError with the reason. */
export async function call(
  target: Target,
  url: string,
  init: { method?: string; json?: unknown; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  try {
    const res = await request(url, {
      method: (init.method ?? 'GET') as 'GET',
      dispatcher: target.dispatcher,
      signal: AbortSignal.timeout(init.timeoutMs ?? ADMIN_TIMEOUT_MS),
      headers: {
        ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}),
        ...init.headers,
      },
      ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    });
    return { status: res.statusCode, text: await res.body.text() };
  } catch (err) {
    const kind = (err as Error).name === 'TimeoutError' ? 'timeout' : classify(err);
    throw new BenchError(`${url}: ${kind === 'connect' ? 'cannot connect' : kind} (${describe(err)})`);
  }
}

/** Checks the server answers before any load is sent, and picks the model when none was named. */
export async function discoverModel(target: Target, wanted: string | null): Promise<string> {
  const res = await call(target, `${target.apiBase}/models`);
  if (res.status !== 200) throw new BenchError(`${target.apiBase}/models answered HTTP ${res.status}: ${res.text.slice(0, 200)}`);
  let ids: string[];
  try {
    ids = ((JSON.parse(res.text) as { data?: { id: string }[] }).data ?? []).map((m) => m.id);
  } catch {
    throw new BenchError(`${target.apiBase}/models did not return JSON; is this an OpenAI-compatible server?`);
  }
  if (wanted) return wanted;
  if (ids.length === 0) throw new BenchError(`${target.apiBase}/models lists no models; pass --model-id`);
  return ids[0];
}

/** Feeds documents to the server's global trie; false when the server has no such endpoint (not ours). */
export async function postDocuments(target: Target, documents: string[]): Promise<boolean> {
  const batch = 256;
  for (let i = 0; i < documents.length; i += batch) {
    const res = await call(target, `${target.apiBase}/lookahead/documents`, { method: 'POST', json: { documents: documents.slice(i, i + batch) }, timeoutMs: 60_000 });
    if (res.status === 404 || res.status === 405) return false;
    if (res.status >= 300) throw new BenchError(`warm-up: POST /v1/lookahead/documents answered HTTP ${res.status}: ${res.text.slice(0, 200)}`);
  }
  return true;
}

/** The server's cumulative lookahead stats, when it has the endpoint. */
export async function fetchLookaheadStats(target: Target): Promise<unknown | null> {
  try {
    const res = await call(target, `${target.apiBase}/lookahead/stats`);
    return res.status === 200 ? (JSON.parse(res.text) as unknown) : null;
  } catch {
    return null;
  }
}
