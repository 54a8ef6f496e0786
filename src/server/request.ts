import type { Context } from 'hono';
import { AbortedError, InvalidRequestError } from '../errors.js';

/**
 * Reads the body as a JSON object; a body that is not one is the client's error, not ours. The text is kept so a
 * passthrough sends upstream exactly what the client sent.
 */
export async function readJson(c: Context): Promise<{ text: string; body: Record<string, unknown> }> {
  const text = await c.req.text();
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

export function tenantOf(c: Context): string {
  return c.req.header('x-tenant') || 'default';
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
    this.timer = setTimeout(() => this.abort(new AbortedError(`the request ran past its ${timeoutMs} ms time limit`)), timeoutMs);
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
