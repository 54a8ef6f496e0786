import { Agent, fetch, type Response as UndiciResponse } from 'undici';
import type { Config } from '../config/schema.js';
import { AppError } from '../errors.js';

export class UpstreamError extends AppError {
  override readonly status = 502;
  override readonly code = 'upstream_unavailable';
}

/** The upstream took longer than upstream.timeoutMs to answer (or to send the next part of its body). */
export class UpstreamTimeoutError extends AppError {
  override readonly status = 504;
  override readonly code = 'upstream_timeout';
}

/** The URL without its credentials: what may appear in a message or a log line. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/+$/, '');
  } catch {
    return '(an invalid URL)';
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Maps a failed upstream fetch (or body read) to the error the client gets; never carries the URL's credentials. */
function upstreamFailure(err: unknown, shown: string): Error {
  const cause = (err as Error & { cause?: Error & { code?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  if (code && TIMEOUT_CODES.has(code)) return new UpstreamTimeoutError(`the upstream server at ${shown} did not answer in time`);
  return new UpstreamError(`the upstream server at ${shown} could not be reached (${code ?? (err as Error).name})`);
}

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** Tokens the model takes, prompt and answer together: ours always say; an upstream's say what it said. */
  context_length?: number;
  max_model_len?: number;
}

/** The OpenAI-compatible server that answers for models not served here. */
export interface Upstream {
  /** The upstream's models; throws UpstreamError when it cannot be asked. */
  listModels(signal?: AbortSignal): Promise<ModelObject[]>;
  /**
   * Sends one request upstream and returns its response as-is (status, error body, and a streamed body that is
   * piped through chunk by chunk). `path` is relative to the base URL, e.g. `chat/completions`.
   */
  forward(request: Request, path: string, body?: string): Promise<Response>;
}

/** Response headers that describe the upstream hop, not the body we pass on (fetch has already decoded it). */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'upgrade']);
const LIST_TIMEOUT_MS = 5000;

export function createUpstream(config: Config['upstream']): Upstream | undefined {
  if (!config.baseUrl) return undefined;
  // fetch refuses URLs with credentials: they travel as Basic auth instead, and never appear in a message.
  const parsed = new URL(config.baseUrl);
  const basic = parsed.username || parsed.password
    ? `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`
    : null;
  const base = redactUrl(config.baseUrl);
  const dispatcher = new Agent({ headersTimeout: config.timeoutMs, bodyTimeout: config.timeoutMs });

  const authFor = (request?: Request): Record<string, string> => {
    if (config.apiKey) return { authorization: `Bearer ${config.apiKey}` };
    if (basic) return { authorization: basic };
    // With no key of our own, the client's credentials are the only ones the upstream could accept.
    const client = request?.headers.get('authorization');
    return client ? { authorization: client } : {};
  };

  const send = async (url: string, init: Parameters<typeof fetch>[1]): Promise<UndiciResponse> => {
    try {
      return await fetch(url, { ...init, dispatcher });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw upstreamFailure(err, base);
    }
  };

  return {
    async listModels(signal) {
      const timeout = AbortSignal.timeout(Math.min(LIST_TIMEOUT_MS, config.timeoutMs));
      const res = await send(`${base}/models`, {
        headers: { accept: 'application/json', ...authFor() },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (!res.ok) throw new UpstreamError(`the upstream server answered GET /models with status ${res.status}`);
      const body = (await res.json()) as { data?: unknown };
      if (!Array.isArray(body.data)) throw new UpstreamError('the upstream server sent a model list without a data array');
      return body.data.filter((m): m is ModelObject => typeof (m as ModelObject)?.id === 'string');
    },

    async forward(request, path, body) {
      const headers: Record<string, string> = { ...authFor(request) };
      for (const name of ['content-type', 'accept', 'openai-organization', 'openai-project']) {
        const value = request.headers.get(name);
        if (value) headers[name] = value;
      }
      const res = await send(`${base}/${path}`, { method: request.method, headers, body, signal: request.signal });
      const out = new Headers();
      res.headers.forEach((value, name) => {
        if (!HOP_HEADERS.has(name)) out.set(name, value);
      });
      const stream = res.body as ReadableStream<Uint8Array> | null;
      const sse = (res.headers.get('content-type') ?? '').includes('text/event-stream');
      return new Response(stream && sse ? endWithErrorEvent(stream, base) : stream, { status: res.status, headers: out });
    },
  };
}

/**
 * Pipes an upstream event stream through; if the upstream fails mid-stream (reset, body timeout), the client's
 * stream ends with an OpenAI error event instead of being cut, so SDKs raise a clear error.
 */
function endWithErrorEvent(body: ReadableStream<Uint8Array>, shown: string): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        const failure = upstreamFailure(err, shown) as UpstreamError | UpstreamTimeoutError;
        const event = { error: { message: `${failure.message} (mid-stream)`, type: failure.type, param: null, code: failure.code } };
        controller.enqueue(new TextEncoder().encode(`\n\ndata: ${JSON.stringify(event)}\n\n`));
        controller.close();
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
