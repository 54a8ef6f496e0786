import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/types.js';
import { UnavailableError } from '../errors.js';
import type { Embedder } from '../model/embedding/index.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { createAuthenticator } from './auth.js';
import { DocumentQuota } from './document-quota.js';
import type { AppEnv, Lifecycle, ReplicaSync, ServerDeps } from './deps.js';
import { errorBody, mapError } from './errors.js';
import { observeRequest } from './observe.js';
import { requireJson } from './request.js';
import { chatCompletions } from './routes/chat.js';
import { completions } from './routes/completions.js';
import { embeddings } from './routes/embeddings.js';
import { responses } from './routes/responses.js';
import { healthRoutes } from './routes/health.js';
import { lookaheadRoutes } from './routes/lookahead.js';
import { modelRoutes } from './routes/models.js';
import { tokenizeRoutes } from './routes/tokenize.js';
import { TenantJobs } from './tenant-jobs.js';
import type { Upstream } from './upstream.js';

export interface AppOptions {
  engine: Engine;
  config: Config;
  /** Where requests for models not served here go; absent = those get 404 model_not_found. */
  upstream?: Upstream;
  /** The local embedding model (--embedding-model); absent = /v1/embeddings goes upstream or answers 404. */
  embedder?: Embedder;
  log?: Logger;
  /** One per app by default; pass one to read it from outside (tests). */
  metrics?: Metrics;
  /** main.ts keeps a reference to flip `draining` on SIGTERM. */
  lifecycle?: Lifecycle;
  /** Replication across replicas (--redis-url); absent = this process learns alone. */
  replication?: ReplicaSync;
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  const { engine, config } = options;
  const deps: ServerDeps = {
    engine,
    config,
    ...(options.upstream && { upstream: options.upstream }),
    ...(options.embedder && { embedder: options.embedder }),
    log: options.log ?? createLogger('silent'),
    metrics: options.metrics ?? new Metrics(() => engine.stats(), { models: () => engine.models }),
    lifecycle: options.lifecycle ?? { draining: false },
    authenticate: createAuthenticator(config.auth),
    tenantJobs: new TenantJobs(config.limits.maxJobsPerTenant),
    documentQuota: new DocumentQuota(config.limits.maxDocumentBytes, config.limits.documentBytesPerMinute),
    ...(options.replication && { replication: options.replication }),
  };
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const requestId = c.req.header('x-request-id')?.slice(0, 128) || `req_${randomBytes(12).toString('hex')}`;
    c.set('requestId', requestId);
    await next();
    c.res.headers.set('x-request-id', requestId);
  });
  app.use(observeRequest(deps));
  const origins = config.server.corsOrigins;
  if (origins.length > 0) {
    // Before auth: a browser's preflight carries no Authorization header and must still be answered. The allowed
    // request headers are those the preflight asks for (the SDKs send several x-stainless-* ones).
    app.use(
      '/v1/*',
      cors({
        origin: origins.includes('*') ? '*' : origins,
        exposeHeaders: ['X-Request-Id', 'Retry-After'],
        maxAge: 600,
      }),
    );
  }
  app.route('/', healthRoutes(deps));

  // vLLM serves tokenize/detokenize beside /v1, not under it: the same guards apply there.
  for (const path of ['/v1/*', '/tokenize', '/detokenize']) {
    app.use(path, async (c, next) => {
      if (deps.lifecycle.draining) throw new UnavailableError('The server is shutting down and takes no new requests; retry on another instance.', 5);
      c.set('caller', deps.authenticate(c.req.header('authorization')));
      if (c.req.method === 'POST') requireJson(c.req.header('content-type'));
      await next();
    });
    app.use(
      path,
      bodyLimit({
        maxSize: config.server.bodyLimitBytes,
        onError: (c) =>
          c.json(
            errorBody(`The request body is larger than this server accepts (${config.server.bodyLimitBytes} bytes).`, 'invalid_request_error', null, 'request_too_large'),
            413,
          ),
      }),
    );
  }
  app.post('/v1/chat/completions', chatCompletions(deps));
  app.post('/v1/completions', completions(deps));
  app.post('/v1/responses', responses(deps));
  app.post('/v1/embeddings', embeddings(deps));
  app.route('/', modelRoutes(deps));
  app.route('/', lookaheadRoutes(deps));
  app.route('/', tokenizeRoutes(deps));

  app.notFound((c) => c.json(errorBody(`Unknown request URL: ${c.req.method} ${c.req.path}.`, 'invalid_request_error', null, 'unknown_url'), 404));
  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? 'unknown';
    const mapped = mapError(err, requestId);
    if (mapped.internal) deps.log.error({ err, requestId }, 'request failed');
    return c.json(mapped.body, mapped.status as 400, { ...mapped.headers, 'x-request-id': requestId });
  });
  return app;
}
