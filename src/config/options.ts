/**
 * The settings reachable from env vars and CLI flags. One table drives parsing, source tracking and --help,
 * so a setting cannot exist as a flag and be forgotten as an env var.
 */
export type OptionKind = 'string' | 'nullable' | 'int' | 'nullableInt' | 'bool' | 'list';

/** Headings of `--help` and docs/configuration.md, in the order both list them. */
export const TOPICS = {
  model: 'Model and runtime',
  server: 'HTTP server',
  auth: 'Auth and tenants',
  lookahead: 'Lookahead drafting',
  scheduling: 'Scheduling and K/V memory',
  limits: 'Request limits',
  tries: 'Tries, sessions and snapshots',
  responses: 'Stored responses',
  embeddings: 'Embeddings',
  replicas: 'Replicas (Redis)',
  upstream: 'Upstream passthrough',
} as const;
export type Topic = keyof typeof TOPICS;

export interface OptionSpec {
  /** Dotted path in Config. */
  path: string;
  topic: Topic;
  env: string;
  /** Long flag name without the leading dashes; absent for settings that should not appear in `ps` (secrets). */
  flag?: string;
  kind: OptionKind;
  help: string;
}

export const OPTIONS: readonly OptionSpec[] = [
  { path: 'model', topic: 'model', env: 'LOOKAHEAD_MODEL', flag: 'model', kind: 'nullable', help: 'model directory, .gguf file, ONNX dir, Hugging Face id org/name, or builtin:synthetic (unset: the shipped chat-llama-5m)' },
  { path: 'modelId', topic: 'model', env: 'LOOKAHEAD_MODEL_ID', flag: 'model-id', kind: 'nullable', help: 'name the model is served under' },
  { path: 'server.host', topic: 'server', env: 'LOOKAHEAD_HOST', flag: 'host', kind: 'string', help: 'listen address (default 127.0.0.1)' },
  { path: 'server.port', topic: 'server', env: 'LOOKAHEAD_PORT', flag: 'port', kind: 'int', help: 'listen port (default 8000; 0 = any free port)' },
  { path: 'server.bodyLimitBytes', topic: 'server', env: 'LOOKAHEAD_BODY_LIMIT_BYTES', flag: 'body-limit-bytes', kind: 'int', help: 'largest request body' },
  { path: 'server.requestTimeoutMs', topic: 'server', env: 'LOOKAHEAD_REQUEST_TIMEOUT_MS', flag: 'request-timeout-ms', kind: 'int', help: 'abort a generation after this long' },
  { path: 'server.shutdownGraceMs', topic: 'server', env: 'LOOKAHEAD_SHUTDOWN_GRACE_MS', flag: 'shutdown-grace-ms', kind: 'int', help: 'on SIGTERM, time running requests get to finish' },
  { path: 'server.corsOrigins', topic: 'server', env: 'LOOKAHEAD_CORS_ORIGINS', flag: 'cors-origins', kind: 'list', help: 'comma-separated origins browsers may call from, or * (default: none, CORS off)' },
  { path: 'server.workerWatchdogMs', topic: 'server', env: 'LOOKAHEAD_WORKER_WATCHDOG_MS', flag: 'worker-watchdog-ms', kind: 'int', help: 'replace the engine worker when one step runs longer than this' },
  { path: 'auth.apiKey', topic: 'auth', env: 'LOOKAHEAD_API_KEY', flag: 'api-key', kind: 'nullable', help: 'require this Bearer key (single tenant "default"); tenants: auth.apiKeys in --config' },
  { path: 'auth.adminKey', topic: 'auth', env: 'LOOKAHEAD_ADMIN_KEY', flag: 'admin-key', kind: 'nullable', help: 'Bearer key for the /v1/lookahead admin routes' },
  { path: 'hub.endpoint', topic: 'model', env: 'LOOKAHEAD_HF_ENDPOINT', flag: 'hf-endpoint', kind: 'string', help: 'Hugging Face hub (or mirror) for --model org/name (default https://huggingface.co)' },
  { path: 'contextLength', topic: 'model', env: 'LOOKAHEAD_CONTEXT_LENGTH', flag: 'context-length', kind: 'nullableInt', help: 'context window (default: the model\'s)' },
  { path: 'cacheDir', topic: 'model', env: 'LOOKAHEAD_CACHE_DIR', flag: 'cache-dir', kind: 'string', help: 'built models and downloads (default $XDG_CACHE_HOME/lookahead-proxy)' },
  { path: 'threads', topic: 'model', env: 'LOOKAHEAD_THREADS', flag: 'threads', kind: 'int', help: 'ONNX Runtime intra-op threads (default: all cores)' },
  { path: 'executionProvider', topic: 'model', env: 'LOOKAHEAD_EXECUTION_PROVIDER', flag: 'execution-provider', kind: 'string', help: 'cpu | cuda | webgpu | auto (cuda, then webgpu, then cpu)' },
  { path: 'dtype', topic: 'model', env: 'LOOKAHEAD_DTYPE', flag: 'dtype', kind: 'string', help: 'fp32 | fp16 | q8 | q4' },
  { path: 'lookahead.decodingLength', topic: 'lookahead', env: 'LOOKAHEAD_DECODING_LENGTH', flag: 'decoding-length', kind: 'int', help: 'max tokens per verify forward' },
  { path: 'lookahead.branchLength', topic: 'lookahead', env: 'LOOKAHEAD_BRANCH_LENGTH', flag: 'branch-length', kind: 'int', help: 'max draft depth' },
  { path: 'queue.maxQueued', topic: 'scheduling', env: 'LOOKAHEAD_MAX_QUEUED', flag: 'max-queued', kind: 'int', help: 'waiting jobs before 429' },
  { path: 'queue.maxRunning', topic: 'scheduling', env: 'LOOKAHEAD_MAX_RUNNING', flag: 'max-running', kind: 'int', help: 'jobs decoded concurrently (their steps batched into one forward)' },
  { path: 'queue.maxBatchTokens', topic: 'scheduling', env: 'LOOKAHEAD_MAX_BATCH_TOKENS', flag: 'max-batch-tokens', kind: 'int', help: 'tokens per batched forward: drafts, single tokens and prompt chunks (default 256)' },
  { path: 'queue.kvBudgetMb', topic: 'scheduling', env: 'LOOKAHEAD_KV_BUDGET_MB', flag: 'kv-budget-mb', kind: 'int', help: 'K/V memory (MiB) running jobs reserve in all; past it jobs queue (default 2048)' },
  { path: 'queue.prefixCacheMb', topic: 'scheduling', env: 'LOOKAHEAD_PREFIX_CACHE_MB', flag: 'prefix-cache-mb', kind: 'int', help: 'K/V memory (MiB) kept from finished jobs for prompts that start the same way; 0 = off (default 1024)' },
  { path: 'limits.maxN', topic: 'limits', env: 'LOOKAHEAD_MAX_N', flag: 'max-n', kind: 'int', help: 'largest `n` a request may ask for' },
  { path: 'limits.maxTokens', topic: 'limits', env: 'LOOKAHEAD_MAX_TOKENS', flag: 'max-tokens', kind: 'int', help: 'default and cap for max_tokens' },
  { path: 'limits.maxJobsPerTenant', topic: 'limits', env: 'LOOKAHEAD_MAX_JOBS_PER_TENANT', flag: 'max-jobs-per-tenant', kind: 'int', help: 'jobs one tenant may have running or queued' },
  { path: 'limits.maxDocumentBytes', topic: 'limits', env: 'LOOKAHEAD_MAX_DOCUMENT_BYTES', flag: 'max-document-bytes', kind: 'int', help: 'document text bytes per POST /v1/lookahead/documents (413 past it)' },
  { path: 'limits.documentBytesPerMinute', topic: 'limits', env: 'LOOKAHEAD_DOCUMENT_BYTES_PER_MINUTE', flag: 'document-bytes-per-minute', kind: 'int', help: 'document bytes one tenant may post per minute (429 past it)' },
  { path: 'sessions.max', topic: 'tries', env: 'LOOKAHEAD_SESSIONS_MAX', flag: 'sessions-max', kind: 'int', help: 'session tries kept' },
  { path: 'sessions.ttlSeconds', topic: 'tries', env: 'LOOKAHEAD_SESSION_TTL_SECONDS', flag: 'session-ttl-seconds', kind: 'int', help: 'idle session lifetime' },
  { path: 'sessions.maxPerTenant', topic: 'tries', env: 'LOOKAHEAD_SESSIONS_PER_TENANT', flag: 'sessions-per-tenant', kind: 'int', help: 'session tries one tenant may hold' },
  { path: 'globalTrie.maxTenants', topic: 'tries', env: 'LOOKAHEAD_MAX_TENANTS', flag: 'max-tenants', kind: 'int', help: 'tenant global tries held (least recently used evicted)' },
  { path: 'globalTrie.maxNodes', topic: 'tries', env: 'LOOKAHEAD_TRIE_MAX_NODES', flag: 'trie-max-nodes', kind: 'int', help: 'global trie size bound' },
  { path: 'globalTrie.snapshotPath', topic: 'tries', env: 'LOOKAHEAD_TRIE_SNAPSHOT', flag: 'trie-snapshot', kind: 'nullable', help: 'file the global trie is saved to / restored from' },
  { path: 'corpus', topic: 'tries', env: 'LOOKAHEAD_CORPUS', flag: 'corpus', kind: 'nullable', help: 'JSONL or directory of documents fed to the global trie at start' },
  { path: 'responses.storeMbPerTenant', topic: 'responses', env: 'LOOKAHEAD_RESPONSES_STORE_MB', flag: 'responses-store-mb', kind: 'int', help: 'stored Responses (previous_response_id) one tenant may hold, MiB; oldest dropped first; 0 = none (default 64)' },
  { path: 'responses.ttlSeconds', topic: 'responses', env: 'LOOKAHEAD_RESPONSES_TTL_SECONDS', flag: 'responses-ttl-seconds', kind: 'int', help: 'how long a stored response can be continued (default 604800, a week)' },
  { path: 'sync.redisUrl', topic: 'replicas', env: 'LOOKAHEAD_REDIS_URL', flag: 'redis-url', kind: 'nullable', help: 'redis://host:port shared by replicas: tries and sessions sync through it (default: off)' },
  { path: 'sync.keyPrefix', topic: 'replicas', env: 'LOOKAHEAD_REDIS_PREFIX', flag: 'redis-prefix', kind: 'string', help: 'Redis key namespace; one per served model (default lookahead)' },
  { path: 'sync.streamMaxLen', topic: 'replicas', env: 'LOOKAHEAD_SYNC_STREAM_MAX_LEN', flag: 'sync-stream-max-len', kind: 'int', help: 'entries kept per tenant stream (default 100000)' },
  { path: 'sync.snapshotIntervalMs', topic: 'replicas', env: 'LOOKAHEAD_SYNC_SNAPSHOT_MS', flag: 'sync-snapshot-ms', kind: 'int', help: 'how often the tries are snapshotted into Redis (default 60000)' },
  { path: 'sync.sessionTurns', topic: 'replicas', env: 'LOOKAHEAD_SYNC_SESSION_TURNS', flag: 'sync-session-turns', kind: 'int', help: 'turns kept per session in Redis (default 16)' },
  { path: 'embedding.model', topic: 'embeddings', env: 'LOOKAHEAD_EMBEDDING_MODEL', flag: 'embedding-model', kind: 'nullable', help: 'sentence-embedding model directory (ONNX export: tokenizer.json, onnx/model.onnx, 1_Pooling) served on /v1/embeddings' },
  { path: 'embedding.modelId', topic: 'embeddings', env: 'LOOKAHEAD_EMBEDDING_MODEL_ID', flag: 'embedding-model-id', kind: 'nullable', help: 'name the embedding model is served under (default: its directory name)' },
  { path: 'embedding.learn', topic: 'embeddings', env: 'LOOKAHEAD_LEARN_FROM_EMBEDDINGS', flag: 'learn-from-embeddings', kind: 'bool', help: 'texts a tenant embeds feed its global trie like posted documents (default off)' },
  { path: 'upstream.baseUrl', topic: 'upstream', env: 'LOOKAHEAD_UPSTREAM_URL', flag: 'upstream', kind: 'nullable', help: 'OpenAI-compatible base URL (with /v1) for models not served here' },
  { path: 'upstream.apiKey', topic: 'upstream', env: 'LOOKAHEAD_UPSTREAM_API_KEY', kind: 'nullable', help: 'Bearer key sent upstream (env only)' },
  { path: 'upstream.timeoutMs', topic: 'upstream', env: 'LOOKAHEAD_UPSTREAM_TIMEOUT_MS', flag: 'upstream-timeout-ms', kind: 'int', help: 'upstream request timeout' },
  { path: 'logLevel', topic: 'server', env: 'LOOKAHEAD_LOG_LEVEL', flag: 'log-level', kind: 'string', help: 'fatal | error | warn | info | debug | trace | silent' },
];

/** `--lookahead off|hier|par|one` (env LOOKAHEAD_MODE) sets two fields at once, so it sits outside the table. */
export const MODE_FLAG = 'lookahead';
export const MODE_ENV = 'LOOKAHEAD_MODE';
export const CONFIG_FLAG = 'config';
export const CONFIG_ENV = 'LOOKAHEAD_CONFIG';

/** Options grouped by topic, in TOPICS' order, each group in declaration order. */
export function optionsByTopic(): [Topic, OptionSpec[]][] {
  return (Object.keys(TOPICS) as Topic[]).map((t) => [t, OPTIONS.filter((o) => o.topic === t)]);
}

export function usage(): string {
  const row = (left: string, text: string) => `  ${left}`.padEnd(38) + text;
  const lines = [
    'Usage: lookahead-proxy [options]      (each option also reads an env var; flags win over env, env over --config)',
    row(`--${CONFIG_FLAG} <file>`, `YAML or JSON config file [${CONFIG_ENV}]`),
    row('--help', 'this text'),
  ];
  for (const [topic, options] of optionsByTopic()) {
    lines.push('', `${TOPICS[topic]}:`);
    if (topic === 'lookahead') lines.push(row(`--${MODE_FLAG} <off|hier|par|one>`, `disable lookahead or pick the draft layout [${MODE_ENV}]`));
    for (const o of options) lines.push(row(o.flag ? `--${o.flag} <value>` : '(env only)', `${o.help} [${o.env}]`));
  }
  lines.push('', 'Every setting, its default and bounds: docs/configuration.md');
  return lines.join('\n');
}
