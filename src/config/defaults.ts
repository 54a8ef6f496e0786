import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import type { Config } from './schema.js';

/** Defaults that depend on the environment (cache location, core count) are computed here, once. */
export function defaultConfig(env: NodeJS.ProcessEnv): Config {
  const cacheRoot = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return {
    server: { host: '127.0.0.1', port: 8000, bodyLimitBytes: 4 * 1024 * 1024, requestTimeoutMs: 600_000, shutdownGraceMs: 10_000, corsOrigins: [], workerWatchdogMs: 120_000 },
    auth: { apiKey: null, apiKeys: [], adminKey: null },
    hub: { endpoint: 'https://huggingface.co', token: env.HF_TOKEN || null },
    model: null,
    modelId: null,
    contextLength: null,
    cacheDir: join(cacheRoot, 'lookahead-proxy'),
    threads: availableParallelism(),
    executionProvider: 'cpu',
    dtype: 'fp32',
    lookahead: { enabled: true, decodingLength: 16, branchLength: 12, layout: 'hier' },
    queue: { maxQueued: 64, maxRunning: 16, maxBatchTokens: 256, kvBudgetMb: 2048, prefixCacheMb: 1024 },
    limits: { maxN: 8, maxTokens: 4096, maxJobsPerTenant: 32, maxDocumentBytes: 4 * 1024 * 1024, documentBytesPerMinute: 64 * 1024 * 1024 },
    sessions: { max: 1000, ttlSeconds: 3600, maxPerTenant: 100 },
    globalTrie: { maxNodes: 2_000_000, snapshotPath: null, maxTenants: 64 },
    corpus: null,
    responses: { storeMbPerTenant: 64, ttlSeconds: 7 * 86_400 },
    sync: { redisUrl: null, keyPrefix: 'lookahead', streamMaxLen: 100_000, snapshotIntervalMs: 60_000, sessionTurns: 16 },
    embedding: { model: null, modelId: null, learn: false },
    upstream: { baseUrl: null, apiKey: null, timeoutMs: 600_000 },
    logLevel: 'info',
  };
}
