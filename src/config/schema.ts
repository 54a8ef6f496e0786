import { z } from 'zod';

/**
 * The one typed configuration. Every field is required here: defaults (defaults.ts) fill the gaps before
 * validation, so a config file or env var only names what it changes. Strict objects catch typos in files.
 */
const positiveInt = z.number().int().positive();
const nullablePath = z.string().min(1).nullable();

export const configSchema = z.strictObject({
  server: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    bodyLimitBytes: positiveInt,
    /** Upper bound on one request's generation; the job is aborted when it passes. */
    requestTimeoutMs: positiveInt,
  }),
  /** null = the embedded synthetic default model. */
  model: nullablePath,
  modelId: z.string().min(1).nullable(),
  contextLength: positiveInt.nullable(),
  cacheDir: z.string().min(1),
  threads: positiveInt,
  executionProvider: z.enum(['cpu', 'cuda', 'webgpu']),
  dtype: z.enum(['fp32', 'fp16', 'q8', 'q4']),
  lookahead: z.strictObject({
    enabled: z.boolean(),
    decodingLength: z.number().int().min(1).max(256),
    branchLength: z.number().int().min(1).max(64),
    layout: z.enum(['hier', 'par', 'one']),
  }),
  queue: z.strictObject({ maxQueued: z.number().int().min(0), maxRunning: positiveInt }),
  limits: z.strictObject({ maxN: positiveInt, maxTokens: positiveInt }),
  sessions: z.strictObject({ max: z.number().int().min(0), ttlSeconds: positiveInt }),
  globalTrie: z.strictObject({ maxNodes: positiveInt, snapshotPath: nullablePath }),
  corpus: nullablePath,
  upstream: z.strictObject({
    /** An OpenAI-compatible base URL including its version prefix, e.g. https://api.openai.com/v1. */
    baseUrl: z.url({ protocol: /^https?$/ }).nullable(),
    apiKey: z.string().min(1).nullable(),
    timeoutMs: positiveInt,
  }),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

export type Config = z.infer<typeof configSchema>;
