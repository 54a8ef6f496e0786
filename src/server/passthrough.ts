import type { Context } from 'hono';
import { NotFoundError } from '../errors.js';
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
  return deps.upstream.forward(c.req.raw, path, text);
}
