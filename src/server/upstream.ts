import { Agent, fetch, type Response as UndiciResponse } from 'undici';
import type { Config } from '../config/schema.js';
import { AppError } from '../errors.js';

export class UpstreamError extends AppError {
  override readonly status = 502;
  override readonly code = 'upstream_unavailable';
}

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
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
  const base = config.baseUrl.replace(/\/+$/, '');
  const dispatcher = new Agent({ headersTimeout: config.timeoutMs, bodyTimeout: config.timeoutMs });

  const authFor = (request?: Request): Record<string, string> => {
    if (config.apiKey) return { authorization: `Bearer ${config.apiKey}` };
    // With no key of our own, the client's credentials are the only ones the upstream could accept.
    const client = request?.headers.get('authorization');
    return client ? { authorization: client } : {};
  };

  const send = async (url: string, init: Parameters<typeof fetch>[1]): Promise<UndiciResponse> => {
    try {
      return await fetch(url, { ...init, dispatcher });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as Error & { cause?: Error }).cause;
      throw new UpstreamError(`the upstream server at ${base} could not be reached (${cause?.message ?? (err as Error).message})`);
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
      return new Response(res.body as ReadableStream<Uint8Array> | null, { status: res.status, headers: out });
    },
  };
}
