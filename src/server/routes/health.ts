import { Hono } from 'hono';
import type { AppEnv, ServerDeps } from '../deps.js';

/**
 * Probes and the Prometheus scrape, outside auth: `/health` says the process is alive, `/ready` whether it should
 * get traffic now (not while draining for shutdown, nor while the engine restarts a failed worker, nor while every
 * decode slot and queue place is taken).
 */
export function healthRoutes(deps: ServerDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const models = () => deps.engine.models.map((m) => m.id);

  app.get('/health', (c) => c.json({ status: 'ok', models: models() }));

  app.get('/ready', (c) => {
    const s = deps.engine.stats();
    const { maxRunning, maxQueued } = deps.config.queue;
    // No room for one more job: the queue is full, whether its jobs wait for a running slot or for K/V memory.
    const full = s.queued >= maxQueued && (s.queued > 0 || s.running >= maxRunning);
    const status = deps.lifecycle.draining ? 'draining' : s.state !== 'ready' ? s.state : full ? 'saturated' : 'ready';
    // The EP each model really runs on: a GPU request that ended up elsewhere is visible to probes and operators.
    const executionProviders = Object.fromEntries(deps.engine.models.map((m) => [m.id, m.executionProvider]));
    // Replication never makes a replica unready: without Redis it serves from its local tries.
    const sync = deps.replication && { sync: deps.replication.status() };
    return c.json(
      {
        status,
        models: models(),
        execution_providers: executionProviders,
        running: s.running,
        queued: s.queued,
        kv: { reserved_bytes: s.kv.reservedBytes, budget_bytes: s.kv.budgetBytes },
        ...sync,
      },
      status === 'ready' ? 200 : 503,
    );
  });

  app.get('/metrics', async (c) => c.body(await deps.metrics.text(), 200, { 'content-type': deps.metrics.contentType }));

  return app;
}
