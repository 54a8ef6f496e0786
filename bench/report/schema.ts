import { z } from 'zod';

/**
 * report.json, version 1. Field names are snake_case like the OpenAI wire format the numbers come from.
 * Anything a server did not report is null, never 0, so "no lookahead stats" cannot read as "no acceptance".
 */
export const REPORT_SCHEMA_VERSION = 1;

const percentiles = z.strictObject({
  mean: z.number(),
  p50: z.number(),
  p90: z.number(),
  p99: z.number(),
  min: z.number(),
  max: z.number(),
});

const run = z.strictObject({
  label: z.string().min(1),
  concurrency: z.number().int().positive().nullable(),
  requests_per_second_target: z.number().positive().nullable(),
  /** The body extension sent to the server for this run (null for a plain run). */
  lookahead: z.record(z.string(), z.unknown()).nullable(),
  requests: z.number().int().nonnegative(),
  completed: z.number().int().nonnegative(),
  errors: z.record(z.string(), z.number().int().positive()),
  duration_s: z.number().nonnegative(),
  requests_per_second: z.number().nonnegative(),
  generated_tokens: z.number().int().nonnegative(),
  prompt_tokens: z.number().int().nonnegative().nullable(),
  tokens_per_second: z.number().nonnegative(),
  tokens_per_second_per_request: percentiles.nullable(),
  tokens_per_step: z.number().positive().nullable(),
  acceptance_by_position: z.array(z.number().min(0)).nullable(),
  draft_tokens: z.number().int().nonnegative().nullable(),
  accepted_draft_tokens: z.number().int().nonnegative().nullable(),
  ttft_ms: percentiles.nullable(),
  inter_chunk_ms: percentiles.nullable(),
  tpot_ms: percentiles.nullable(),
  latency_ms: percentiles.nullable(),
  rss_bytes: z.array(z.strictObject({ t: z.number().nonnegative(), bytes: z.number().nonnegative() })).nullable(),
});

const ratio = z.strictObject({
  label: z.string(),
  baseline: z.string(),
  concurrency: z.number().int().positive().nullable(),
  tokens_per_second: z.number().nullable(),
  tokens_per_step: z.number().nullable(),
  ttft_p50: z.number().nullable(),
  latency_p50: z.number().nullable(),
  latency_p99: z.number().nullable(),
});

export const peerSchema = z.strictObject({
  engine: z.string(),
  model_path: z.string(),
  prompts: z.number().int().nonnegative(),
  max_tokens: z.number().int().positive(),
  runs: z.array(z.strictObject({ label: z.string(), tokens_per_second: z.number().nonnegative(), generated_tokens: z.number().int().nonnegative(), duration_s: z.number().nonnegative() })),
  ratios: z.record(z.string(), z.number().nullable()),
  /** Prompts whose greedy outputs agree token for token (text for text when ids are not comparable). */
  agreement: z.strictObject({ compared: z.number().int().nonnegative(), identical: z.number().int().nonnegative(), basis: z.enum(['text', 'tokens']) }),
});

export const reportSchema = z.strictObject({
  schema_version: z.literal(REPORT_SCHEMA_VERSION),
  kind: z.enum(['load', 'ab', 'forward-cost', 'peer-transformers']),
  created_at: z.iso.datetime(),
  command: z.string(),
  machine: z.strictObject({
    cpu_model: z.string(),
    cores: z.number().int().positive(),
    total_memory_bytes: z.number().int().positive(),
    platform: z.string(),
    arch: z.string(),
    node_version: z.string(),
    ort_version: z.string().nullable(),
  }),
  model: z.strictObject({ id: z.string(), path: z.string().nullable() }),
  config: z.strictObject({
    base_url: z.string().nullable(),
    server: z.enum(['spawned', 'external', 'in-process']),
    workload: z.strictObject({ path: z.string(), shape: z.string(), items: z.number().int().nonnegative(), warmup_items: z.number().int().nonnegative(), warmup_applied: z.boolean().nullable(), reused_items: z.boolean() }),
    requests: z.number().int().positive().nullable(),
    duration_s: z.number().positive().nullable(),
    max_tokens: z.number().int().positive(),
    concurrency: z.array(z.number().int().positive()),
    rounds: z.number().int().positive(),
    labels: z.array(z.string()),
  }),
  runs: z.array(run),
  ratios: z.array(ratio),
  forward_cost: z.array(z.strictObject({ k: z.number().int().positive(), ms: z.number().nonnegative() })).nullable(),
  peer: peerSchema.nullable(),
  server_stats: z.unknown().nullable(),
});

export type Report = z.infer<typeof reportSchema>;
export type ReportRun = z.infer<typeof run>;
export type ReportRatio = z.infer<typeof ratio>;
export type PeerReport = z.infer<typeof peerSchema>;
