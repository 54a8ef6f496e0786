import type { Context } from 'hono';
import type { AppEnv, ServerDeps } from './deps.js';

const ROUTES = new Set(['/health', '/ready', '/metrics', '/v1/chat/completions', '/v1/completions', '/v1/models', '/v1/lookahead/documents', '/v1/lookahead/stats']);
const METHODS = new Set(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS']);
/** Probes and scrapes come every few seconds: their lines would drown the requests that matter at info. */
const QUIET_ROUTES = new Set(['/health', '/ready', '/metrics']);

/**
 * Route labels from a fixed set, so a client inventing URLs (or model ids in paths) cannot grow the metrics
 * without bound.
 */
export function routeLabel(path: string): string {
  if (ROUTES.has(path)) return path;
  if (path.startsWith('/v1/models/')) return '/v1/models/:id';
  if (path.startsWith('/v1/lookahead/sessions/')) return '/v1/lookahead/sessions/:id';
  return 'unmatched';
}

/**
 * Counts and times every request and writes its one log line when it ends — for a stream, when the last event
 * has been sent. The line carries ids, tenant, model and token counts; never prompt or answer text.
 */
export function observeRequest(deps: ServerDeps) {
  return async (c: Context<AppEnv>, next: () => Promise<void>): Promise<void> => {
    const started = performance.now();
    await next();
    const route = routeLabel(c.req.path);
    const method = METHODS.has(c.req.method) ? c.req.method : 'other';
    const status = c.res.status;
    const finish = () => {
      const seconds = (performance.now() - started) / 1000;
      deps.metrics.observeRequest(route, method, status, seconds);
      const g = c.get('generation');
      const line = {
        requestId: c.get('requestId'),
        tenant: c.get('caller')?.tenant ?? null,
        method,
        route,
        status,
        durationMs: Math.round(seconds * 1000),
        ...(g && {
          model: g.model,
          stream: g.stream,
          promptTokens: g.promptTokens,
          completionTokens: g.completionTokens,
          tokensPerStep: Math.round(g.tokensPerStep * 100) / 100,
        }),
      };
      if (QUIET_ROUTES.has(route)) deps.log.debug(line, 'request');
      else deps.log.info(line, 'request');
    };
    const streamDone = c.get('streamDone');
    if (streamDone) void streamDone.then(finish);
    else finish();
  };
}
