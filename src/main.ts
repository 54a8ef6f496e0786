import { toEngineOptions } from './config/engine-options.js';
import { ConfigError, loadConfig } from './config/load.js';
import { usage } from './config/options.js';
import { createEngine } from './engine/index.js';
import { createLogger } from './observability/logger.js';
import { createApp } from './server/app.js';
import { listen } from './server/serve.js';
import { createUpstream } from './server/upstream.js';

/** Running jobs get this long to finish on shutdown before they are aborted. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig(argv);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`lookahead-proxy: ${err.message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  const engine = await createEngine(toEngineOptions(config), (message) => log.info({ component: 'engine' }, message));
  const app = createApp({ engine, config, upstream: createUpstream(config.upstream), log });
  const server = await listen(app, config.server.host, config.server.port);
  const models = engine.models.map((m) => m.id);
  log.info({ url: server.url, models, upstream: config.upstream.baseUrl }, `serving ${models.join(', ')} at ${server.url}/v1`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: no longer accepting requests; finishing running jobs`);
    const closed = server.close();
    await engine.close(SHUTDOWN_GRACE_MS);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    await server.close(true);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`lookahead-proxy: failed to start: ${err.message}\n`);
  process.exit(1);
});
