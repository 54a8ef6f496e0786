import type { Context } from 'hono';
import { NotFoundError } from '../errors.js';
import { authEnabled } from './auth.js';
import type { ServerDeps } from './deps.js';

export function modelNotFound(model: string): NotFoundError {
  return new NotFoundError(`The model \`${model}\` does not exist or you do not have access to it.`, 'model_not_found');
}

export function isLocalModel(deps: ServerDeps, model: string): boolean {
  return deps.engine.models.some((m) => m.id === model);
}

/**
 * Requests for a model this server does not host go upstream untouched; without an upstream they are a 404.
 * Returns null when the model is local (or absent: validation will say so).
 */
export async function forwardIfRemote(deps: ServerDeps, c: Context, body: Record<string, unknown>, text: string, path: string): Promise<Response | null> {
  const model = body.model;
  if (typeof model !== 'string' || model === '' || isLocalModel(deps, model)) return null;
  if (!deps.upstream) throw modelNotFound(model);
  return deps.upstream.forward(withoutOurKey(deps, c.req.raw), path, text);
}

/** With auth on, the client's Bearer key is one of ours: it must not travel to the upstream. */
export function withoutOurKey(deps: ServerDeps, request: Request): Request {
  if (!authEnabled(deps.config.auth) || !request.headers.has('authorization')) return request;
  const headers = new Headers(request.headers);
  headers.delete('authorization');
  return new Request(request.url, { method: request.method, headers, signal: request.signal });
}
