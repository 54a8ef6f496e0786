import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/types.js';
import { createLogger, type Logger } from '../observability/logger.js';
import type { AppEnv, ServerDeps } from './deps.js';
import { errorBody, mapError } from './errors.js';
import { chatCompletions } from './routes/chat.js';
import { completions } from './routes/completions.js';
import { lookaheadRoutes } from './routes/lookahead.js';
import { modelRoutes } from './routes/models.js';
import type { Upstream } from './upstream.js';

export interface AppOptions {
  engine: Engine;
  config: Config;
  /** Where requests for models not served here go; absent = those get 404 model_not_found. */
  upstream?: Upstream;
  log?: Logger;
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  const deps: ServerDeps = { ...options, log: options.log ?? createLogger('silent') };
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const requestId = c.req.header('x-request-id') || `req_${randomBytes(12).toString('hex')}`;
    c.set('requestId', requestId);
    await next();
    c.res.headers.set('x-request-id', requestId);
  });
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: deps.config.server.bodyLimitBytes,
      onError: (c) =>
        c.json(
          errorBody(`The request body is larger than this server accepts (${deps.config.server.bodyLimitBytes} bytes).`, 'invalid_request_error', null, 'request_too_large'),
          413,
        ),
    }),
  );

  app.get('/health', (c) => c.json({ status: 'ok', models: deps.engine.models.map((m) => m.id) }));
  app.post('/v1/chat/completions', chatCompletions(deps));
  app.post('/v1/completions', completions(deps));
  app.route('/', modelRoutes(deps));
  app.route('/', lookaheadRoutes(deps));

  app.notFound((c) => c.json(errorBody(`Unknown request URL: ${c.req.method} ${c.req.path}.`, 'invalid_request_error', null, 'unknown_url'), 404));
  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? 'unknown';
    const mapped = mapError(err, requestId);
    if (mapped.internal) deps.log.error({ err, requestId }, 'request failed');
    return c.json(mapped.body, mapped.status as 400, { ...mapped.headers, 'x-request-id': requestId });
  });
  return app;
}
