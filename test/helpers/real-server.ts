import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toEngineOptions } from '../../src/config/engine-options.js';
import { loadConfig } from '../../src/config/load.js';
import { createEngine, type TestHooks } from '../../src/engine/index.js';
import type { Logger } from '../../src/observability/logger.js';
import type { Engine } from '../../src/engine/types.js';
import { createApp } from '../../src/server/app.js';
import { listen } from '../../src/server/serve.js';
import { withModel } from './engine.js';
import { createUpstream } from '../../src/server/upstream.js';
import { startEmbedder } from '../../src/model/embedding/index.js';

export interface RealServer {
  url: string;
  /** What an OpenAI SDK takes as baseURL. */
  baseURL: string;
  engine: Engine;
  modelId: string;
  close(): Promise<void>;
}

/**
 * The real thing, in-process: config from flags exactly as main.ts reads them, the real engine (worker thread +
 * ORT), the real app on a free loopback port. The cache lives in a temp folder removed on close.
 */
export async function startRealServer(flags: string[] = [], extras: { hooks?: TestHooks; log?: Logger; engineLog?: (m: string) => void } = {}): Promise<RealServer> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'lookahead-e2e-'));
  const config = loadConfig(['--port', '0', '--cache-dir', cacheDir, '--threads', '1', '--log-level', 'silent', ...withModel(flags)], {});
  const engine = await createEngine(toEngineOptions(config), extras.engineLog ?? (() => {}), extras.hooks);
  const embedder = config.embedding.model ? await startEmbedder(config.embedding.model, { id: config.embedding.modelId, threads: 1 }) : undefined;
  const app = createApp({ engine, config, upstream: createUpstream(config.upstream), ...(extras.log && { log: extras.log }), ...(embedder && { embedder }) });
  const server = await listen(app, '127.0.0.1', 0);
  return {
    url: server.url,
    baseURL: `${server.url}/v1`,
    engine,
    modelId: engine.models[0].id,
    async close() {
      await server.close(true);
      await engine.close(1000);
      await embedder?.close();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** The model the project ships (`models/chat-llama-5m`), under the id the e2e tests ask for. */
export const SHIPPED_MODEL = 'chat-llama-5m';

/** The real server on the shipped model. */
export function startShippedServer(): Promise<RealServer> {
  return startRealServer(['--model', 'models/chat-llama-5m', '--model-id', SHIPPED_MODEL]);
}
