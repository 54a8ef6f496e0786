import type { EngineOptions } from '../engine/types.js';
import type { Config } from './schema.js';

export function toEngineOptions(config: Config): EngineOptions {
  return {
    model: config.model,
    ...(config.modelId !== null && { modelId: config.modelId }),
    ...(config.contextLength !== null && { contextLength: config.contextLength }),
    cacheDir: config.cacheDir,
    threads: config.threads,
    executionProvider: config.executionProvider,
    dtype: config.dtype,
    lookahead: { ...config.lookahead },
    maxQueued: config.queue.maxQueued,
    maxRunning: config.queue.maxRunning,
    maxBatchTokens: config.queue.maxBatchTokens,
    kvBudgetBytes: config.queue.kvBudgetMb * 2 ** 20,
    prefixCacheBytes: config.queue.prefixCacheMb * 2 ** 20,
    sessions: { ...config.sessions },
    globalTrie: { ...config.globalTrie },
    watchdogMs: config.server.workerWatchdogMs,
    corpus: config.corpus,
    hub: { ...config.hub },
    shareAnswers: config.sync.redisUrl !== null,
  };
}
