import { z } from 'zod';
import type { LookaheadOptions } from '../engine/types.js';

/**
 * The one typed configuration. Every field is required here: defaults (defaults.ts) fill the gaps before
 * validation, so a config file or env var only names what it changes. Strict objects catch typos in files.
 */
const positiveInt = z.number().int().positive();
const nullablePath = z.string().min(1).nullable();

/**
 * The lookahead settings, defined once: the server's defaults (below) and a request's overrides (server/schemas.ts:
 * the same fields and bounds in snake_case, each optional) both build on these, and both end as the engine's
 * LookaheadOptions.
 */
export const lookaheadSettings = z.strictObject({
  enabled: z.boolean(),
  decodingLength: z.number().int().min(1).max(256),
  branchLength: z.number().int().min(1).max(64),
  layout: z.enum(['hier', 'par', 'one']),
}) satisfies z.ZodType<LookaheadOptions>;

export const configSchema = z.strictObject({
  server: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    bodyLimitBytes: positiveInt,
    /** Upper bound on one request's generation; the job is aborted and the request answered 504. */
    requestTimeoutMs: positiveInt,
    /** On SIGTERM/SIGINT, how long running requests get to finish before their jobs are aborted. */
    shutdownGraceMs: z.number().int().min(0),
    /** Origins browsers may call from (`*` = any); empty = no CORS headers, preflights go unanswered. */
    corsOrigins: z.array(z.union([z.literal('*'), z.url({ protocol: /^https?$/ })])),
    /** A decode step or slice of trie work running longer than this: the engine worker is replaced. */
    workerWatchdogMs: positiveInt,
  }),
  /** No keys at all = auth off: every caller is tenant "default" and may use the admin routes. */
  auth: z.strictObject({
    /** The single-tenant shortcut (`--api-key`): this key is tenant "default". */
    apiKey: z.string().min(1).nullable(),
    apiKeys: z.array(z.strictObject({ key: z.string().min(1), tenant: z.string().min(1).max(128) })),
    /** Needed for /v1/lookahead/stats and for feeding another tenant's trie; null = nobody may, once auth is on. */
    adminKey: z.string().min(1).nullable(),
  }),
  /** Where `--model org/name` is downloaded from (a mirror may stand in for the hub). */
  hub: z.strictObject({ endpoint: z.url({ protocol: /^https?$/ }), token: z.string().min(1).nullable() }),
  /**
   * null = the shipped chat-llama-5m (models/); `builtin:synthetic` = the embedded synthetic model (noise, no files);
   * a path, or a Hugging Face repo id (`org/name`) to download.
   */
  model: nullablePath,
  modelId: z.string().min(1).nullable(),
  contextLength: positiveInt.nullable(),
  cacheDir: z.string().min(1),
  threads: positiveInt,
  /** 'auto' = the first of cuda, webgpu, cpu that loads; an explicit EP that does not load is an error at start. */
  executionProvider: z.enum(['auto', 'cpu', 'cuda', 'webgpu']),
  dtype: z.enum(['fp32', 'fp16', 'q8', 'q4']),
  lookahead: lookaheadSettings,
  queue: z.strictObject({
    maxQueued: z.number().int().min(0),
    maxRunning: positiveInt,
    /** Tokens one batched forward carries at most: the running jobs' drafts and single tokens, and prompt chunks. */
    maxBatchTokens: positiveInt,
    /** K/V memory (MiB) the running jobs may reserve together; a job reserves for its prompt, max_tokens and a draft. */
    kvBudgetMb: positiveInt,
    /** K/V memory (MiB) finished jobs' rows may hold for prompts that start the same way; 0 = no prefix cache. */
    prefixCacheMb: z.number().int().min(0),
  }),
  limits: z.strictObject({
    maxN: positiveInt,
    maxTokens: positiveInt,
    /** Jobs (running or queued) one tenant may have at once; more answer 429 with Retry-After. */
    maxJobsPerTenant: positiveInt,
    /** Text bytes one POST /v1/lookahead/documents may carry (413 past it). */
    maxDocumentBytes: positiveInt,
    /** Document bytes one tenant may post per minute (429 with Retry-After past it). */
    documentBytesPerMinute: positiveInt,
  }),
  sessions: z.strictObject({ max: z.number().int().min(0), ttlSeconds: positiveInt, maxPerTenant: positiveInt }),
  /** maxTenants bounds memory whatever tenant names arrive: the least recently used tenant's trie goes first. */
  globalTrie: z.strictObject({ maxNodes: positiveInt, snapshotPath: nullablePath, maxTenants: positiveInt }),
  corpus: nullablePath,
  /**
   * Stored Responses (`previous_response_id`, `item_reference`): kept per tenant, the oldest dropped past the byte
   * bound (the stored JSON's bytes) or the age; in Redis too when sync.redisUrl is set. 0 MiB = nothing is stored.
   */
  responses: z.strictObject({ storeMbPerTenant: z.number().int().min(0), ttlSeconds: positiveInt }),
  /** Replicas sharing each tenant's global trie and sessions' turns through Redis; redisUrl null = off. */
  sync: z.strictObject({
    redisUrl: z.url({ protocol: /^rediss?$/ }).nullable(),
    /** Namespace of every key: replicas of one model share it; another model needs another prefix. */
    keyPrefix: z.string().min(1).max(100),
    /** Entries kept per tenant stream (trimmed approximately); older ones live on in the snapshot. */
    streamMaxLen: positiveInt,
    /** How often a replica (one at a time) writes the global tries' snapshot to Redis. */
    snapshotIntervalMs: positiveInt,
    /** Earlier turns kept per session for a replica the session moves to. */
    sessionTurns: positiveInt,
  }),
  /** A local sentence-embedding model for /v1/embeddings (null = embeddings only go upstream). */
  embedding: z.strictObject({
    model: nullablePath,
    modelId: z.string().min(1).nullable(),
    /** Texts a tenant embeds go into its global trie as posted documents do (RAG prompts will quote them). */
    learn: z.boolean(),
  }),
  upstream: z.strictObject({
    /** An OpenAI-compatible base URL including its version prefix, e.g. https://api.openai.com/v1. */
    baseUrl: z.url({ protocol: /^https?$/ }).nullable(),
    apiKey: z.string().min(1).nullable(),
    timeoutMs: positiveInt,
  }),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

export type Config = z.infer<typeof configSchema>;
