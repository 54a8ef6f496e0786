import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { Upstream } from './upstream.js';

/** What every route may use. */
export interface ServerDeps {
  engine: Engine;
  config: Config;
  upstream?: Upstream;
  log: Logger;
}

/** Hono's per-request variables. */
export interface AppEnv {
  Variables: { requestId: string };
}
