import { Hono } from 'hono';
import { errorBody } from './errors.js';

/**
 * What answers while the model loads (a download or a first build can take minutes): alive for liveness probes,
 * not ready, and 503 with Retry-After for work, so orchestrators and clients wait instead of seeing refused
 * connections.
 */
export function loadingApp(): Hono {
  const app = new Hono();
  app.get('/health', (c) => c.json({ status: 'loading', models: [] }));
  app.get('/ready', (c) => c.json({ status: 'loading', models: [] }, 503));
  app.all('*', (c) =>
    c.json(errorBody('The server is loading its model; retry shortly.', 'server_error', null, 'service_unavailable'), 503, { 'Retry-After': '5' }),
  );
  return app;
}
