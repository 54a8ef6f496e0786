import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';

/** What serves requests: a Hono app, or anything else with its fetch (main.ts swaps the loading app for the real one). */
export interface FetchHandler {
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting connections and waits for open ones; `force` also cuts streams still running. */
  close(force?: boolean): Promise<void>;
}

export function listen(app: FetchHandler, host: string, port: number): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: (request, env) => app.fetch(request, env), hostname: host, port }, (info: AddressInfo) => {
      const shownHost = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shownHost}:${info.port}`,
        port: info.port,
        close: (force = false) =>
          new Promise<void>((done) => {
            server.close(() => done());
            const http = server as import('node:http').Server;
            http.closeIdleConnections?.();
            if (force) http.closeAllConnections?.();
          }),
      });
    });
    server.once('error', reject);
  });
}
