import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { AppEnv, ServerDeps } from './deps.js';

const METHODS = new Set(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS']);
/** Probes and scrapes come every few seconds: their lines would drown the requests that matter at info. */
const QUIET_ROUTES = new Set(['/health', '/ready', '/metrics']);

/**
 * The pattern of the route whose handler served the request (middleware is registered for every method), its
 * parameters' regexes cut (`/v1/models/:id`): labels come from the app's own routes, so every route has its own and
 * a client inventing URLs (or model ids in paths) cannot grow the metrics without bound.
 */
function routeLabel(c: Context): string {
  const route = matchedRoutes(c).findLast((r) => r.method !== 'ALL');
  return route ? route.path.replace(/\{[^}]*\}/g, '') : 'unmatched';
}

/**
 * Counts and times every request and writes its one log line when it ends — for a stream, when the last event
 * has been sent. The line carries ids, tenant, model and token counts; never prompt or answer text.
 */
export function observeRequest(deps: ServerDeps) {
  return async (c: Context<AppEnv>, next: () => Promise<void>): Promise<void> => {
    const started = performance.now();
    await next();
    const route = routeLabel(c);
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
