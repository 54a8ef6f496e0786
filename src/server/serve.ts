import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AppEnv } from './deps.js';

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting connections and waits for open ones; `force` also cuts streams still running. */
  close(force?: boolean): Promise<void>;
}

export function listen(app: Hono<AppEnv>, host: string, port: number): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port }, (info: AddressInfo) => {
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
