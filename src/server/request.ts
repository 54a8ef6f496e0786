import type { Context } from 'hono';
import { AbortedError, InvalidRequestError, RequestTimeoutError, UnsupportedMediaTypeError } from '../errors.js';
import type { AppEnv } from './deps.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Every POST body must be declared JSON (see UnsupportedMediaTypeError); a missing Content-Type is no exception. */
export function requireJson(type: string | undefined): void {
  if (type === undefined || !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeError(`Invalid Content-Type header (${type?.slice(0, 100) ?? 'none'}), expected application/json.`);
  }
}

/**
 * Reads the body as a JSON object (its Content-Type was checked by requireJson); a body that is not one is the
 * client's error, not ours. The text is kept so a passthrough sends upstream exactly what the client sent. Bytes that are not UTF-8 are refused rather than
 * replaced: U+FFFD in a prompt would silently change what the model sees.
 */
export async function readJson(c: Context): Promise<{ text: string; body: Record<string, unknown> }> {
  let text: string;
  try {
    text = utf8.decode(await c.req.arrayBuffer());
  } catch (err) {
    if (err instanceof TypeError) throw new InvalidRequestError('The request body is not valid UTF-8.', null, 'invalid_encoding');
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidRequestError(
      'We could not parse the JSON body of your request. The body must be a JSON object (Content-Type: application/json).',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidRequestError('The request body must be a JSON object.');
  }
  return { text, body: value as Record<string, unknown> };
}

/** The session scope for the session trie: header first, then the OpenAI fields meant for caching/identity. */
export function sessionIdOf(c: Context, body: { prompt_cache_key?: string | null; user?: string | null }): string | undefined {
  return c.req.header('x-session-id') || body.prompt_cache_key || body.user || undefined;
}

/** The caller's tenant, as the auth middleware resolved it from the API key. */
export function tenantOf(c: Context<AppEnv>): string {
  return c.get('caller').tenant;
}

/**
 * One AbortController per request: fired by the client going away, by the request timeout, or by the route
 * itself when one of several jobs fails.
 */
export class RequestAbort {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(clientSignal: AbortSignal, timeoutMs: number) {
    const onClientGone = () => this.abort(new AbortedError('the client closed the connection'));
    if (clientSignal.aborted) onClientGone();
    else clientSignal.addEventListener('abort', onClientGone, { once: true });
    this.timer = setTimeout(() => this.abort(new RequestTimeoutError(`The request ran past this server's ${timeoutMs} ms time limit; it was stopped.`)), timeoutMs);
    this.timer.unref();
    this.controller.signal.addEventListener('abort', () => clearTimeout(this.timer), { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Why the request was aborted, if it was: a more useful error than the job's generic cancellation. */
  get reason(): Error | null {
    return this.controller.signal.aborted ? (this.controller.signal.reason as Error) : null;
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
