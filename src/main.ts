import { toEngineOptions } from './config/engine-options.js';
import { ConfigError, loadConfig } from './config/load.js';
import { usage } from './config/options.js';
import { createEngine } from './engine/index.js';
import { startEmbedder } from './model/embedding/index.js';
import type { Engine } from './engine/types.js';
import { createLogger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { createApp } from './server/app.js';
import type { Lifecycle } from './server/deps.js';
import { loadingApp } from './server/loading.js';
import { listen, type FetchHandler } from './server/serve.js';
import { createUpstream, redactUrl } from './server/upstream.js';
import { startReplication, type Replication } from './sync/index.js';

/** After the last job ends, how long its stream gets to send its final events before connections are cut. */
const FLUSH_MS = 2000;
/**
 * Shutdown takes at most the grace period plus this: saving the tries (bounded in the engine), stopping the worker
 * and the final flush. Past it the process exits anyway, whatever is stuck.
 */
const SHUTDOWN_BOUND_MS = 20_000;
/**
 * A signal this soon after the first is the same event seen twice, not a person insisting: `kill -TERM -- -PGID`
 * reaches the server and npm, which forwards it; Ctrl-C signals the terminal's whole foreground group; process
 * managers signal a control group.
 */
const SAME_SIGNAL_MS = 1000;

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
  const lifecycle: Lifecycle = { draining: false };
  // Listening before the model is loaded: probes see "alive, not ready" during a download or a first build.
  let handler: FetchHandler = loadingApp();
  const server = await listen({ fetch: (request, env) => handler.fetch(request, env) }, config.server.host, config.server.port);
  let engine: Engine | null = null;
  let replication: Replication | undefined;

  let stopping = false;
  let firstSignalAt = 0;
  /** Set by a second signal: the draining path must then not exit 0 behind its back. */
  let forcing = false;
  const stop = async (signal: string) => {
    if (stopping) {
      if (performance.now() - firstSignalAt < SAME_SIGNAL_MS) {
        log.info(`${signal} again within ${SAME_SIGNAL_MS} ms: taken as the same request to stop (send it again later to exit now)`);
        return;
      }
      forcing = true;
      log.warn(`${signal} again: exiting now`);
      // The worker goes first: exiting while it is inside an ORT forward aborts the process (SIGABRT).
      await Promise.race([engine?.terminate(), sleep(1000)]);
      process.exit(1);
    }
    stopping = true;
    firstSignalAt = performance.now();
    lifecycle.draining = true;
    const grace = config.server.shutdownGraceMs;
    setTimeout(() => {
      log.error({ boundMs: grace + SHUTDOWN_BOUND_MS }, 'shutdown ran past its bound: exiting now');
      process.exit(1);
    }, grace + SHUTDOWN_BOUND_MS).unref();
    log.info({ graceMs: grace }, `${signal}: taking no new requests (503); letting running ones finish`);
    if (engine) {
      const deadline = Date.now() + grace;
      // Queued jobs are in flight too: they get their turn within the grace period.
      while (Date.now() < deadline && busy(engine)) await sleep(20);
      // Aborts whatever is still running, then snapshots the tries.
      await engine.close(Math.max(0, deadline - Date.now()));
    }
    // After the engine: answers of the last jobs are written to Redis before the connection closes.
    await replication?.close();
    if (forcing) return;
    await Promise.race([server.close(), sleep(FLUSH_MS)]);
    await server.close(true);
    if (forcing) return;
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  log.info({ address: server.url }, 'listening; loading the model');
  const loaded = await createEngine(toEngineOptions(config), (message) => log.info({ component: 'engine' }, message));
  if (stopping) return; // a signal came while loading; stop() exits
  const metrics = new Metrics(() => loaded.stats());
  if (config.sync.redisUrl) ({ engine, replication } = startReplication(loaded, config, metrics.registry, log));
  else engine = loaded;
  const embedder = config.embedding.model ? await startEmbedder(config.embedding.model, { id: config.embedding.modelId, threads: config.threads }) : undefined;
  if (stopping) return;
  handler = createApp({ engine, config, upstream: createUpstream(config.upstream), log, lifecycle, metrics, ...(replication && { replication }), ...(embedder && { embedder }) });
  const models = [...engine.models.map((m) => m.id), ...(embedder ? [embedder.id] : [])];
  log.info({ url: server.url, models, upstream: config.upstream.baseUrl && redactUrl(config.upstream.baseUrl) }, `serving ${models.join(', ')} at ${server.url}/v1`);
}

function busy(engine: Engine): boolean {
  const s = engine.stats();
  return s.running + s.queued > 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`lookahead-proxy: failed to start: ${err.message}\n`);
  process.exit(1);
});
