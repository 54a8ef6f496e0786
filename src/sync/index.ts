import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { readCorpus } from '../engine/corpus.js';
import type { Engine, ReplicaTries } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import { ReplicatedEngine } from './replicated-engine.js';
import { Replication } from './replication.js';

export { Replication } from './replication.js';

/**
 * Replication on (config.sync.redisUrl set): returns the engine the server should use (documents posted to it are
 * shared) and the running replication. It never waits for Redis: a replica serves from its local tries meanwhile.
 */
export function startReplication(
  engine: Engine & ReplicaTries,
  config: Config,
  registry: Registry,
  log: Logger,
): { engine: Engine; replication: Replication } {
  const { sync } = config;
  const replication = new Replication(
    engine,
    {
      redisUrl: sync.redisUrl!,
      keyPrefix: sync.keyPrefix,
      streamMaxLen: sync.streamMaxLen,
      snapshotIntervalMs: sync.snapshotIntervalMs,
      sessionTurns: sync.sessionTurns,
      sessionTtlSeconds: config.sessions.ttlSeconds,
      maxSessions: config.sessions.max,
      corpus: config.corpus ? readCorpus(config.corpus) : [],
      responses: { bytesPerTenant: config.responses.storeMbPerTenant * 1024 * 1024, ttlMs: config.responses.ttlSeconds * 1000 },
    },
    registry,
    log,
  );
  replication.start();
  return { engine: new ReplicatedEngine(engine, (tenant, texts) => replication.documents(tenant, texts)), replication };
}
