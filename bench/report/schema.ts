import { z } from 'zod';

/**
 * report.json, version 2 (2: per-run draft sizes and server-side times; the fair `ab` section). Field names are snake_case like the OpenAI wire format the numbers come from.
 * Anything a server did not report is null, never 0, so "no lookahead stats" cannot read as "no acceptance".
 */
export const REPORT_SCHEMA_VERSION = 2;

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
  /** Forward size (draft + root) → decode steps the server's adaptive budget chose. */
  draft_sizes: z.record(z.string(), z.number().int().nonnegative()).nullable(),
  /** As the server measured them: ms in the forward per decode step, decode wall ms per token after the first. */
  forward_ms_per_step: z.number().nonnegative().nullable(),
  server_tpot_ms: z.number().nonnegative().nullable(),
});

const interval = z.strictObject({ n: z.number().int().positive(), estimate: z.number().positive(), low: z.number().positive(), high: z.number().positive() });

/** The fair A/B: every arm on the same prompts, ABBA per block, one tenant per arm and level, paired ratios. */
export const abSchema = z.strictObject({
  isolation: z.string(),
  order: z.string(),
  prompts: z.number().int().nonnegative(),
  warmup_per_tenant: z.number().int().nonnegative(),
  bootstrap: z.strictObject({ resamples: z.number().int().positive(), level: z.number().positive().max(1), seed: z.number().int() }),
  /** Per prompt arm ÷ baseline at one level: decode tok/s (>1 faster), TPOT (<1 faster), tokens per step. */
  paired: z.array(
    z.strictObject({
      label: z.string(),
      baseline: z.string(),
      concurrency: z.number().int().positive(),
      identical_outputs: z.number().int().nonnegative(),
      compared_outputs: z.number().int().nonnegative(),
      decode_tokens_per_second: interval.nullable(),
      tpot: interval.nullable(),
      tokens_per_step: interval.nullable(),
    }),
  ),
  /** Aggregate tokens/s of each arm at each level, and ÷ the same arm at 1 client. */
  scaling: z.array(z.strictObject({ label: z.string(), concurrency: z.number().int().positive(), tokens_per_second: z.number().nonnegative(), vs_one_client: z.number().nullable(), decode_tokens_per_second: z.number().nullable(), decode_vs_one_client: z.number().nullable(), ttft_p50_ms: z.number().nullable() })),
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
  /** Per-prompt tokens/s ratios (geometric mean, bootstrap CI), keyed "arm / baseline". */
  paired: z.record(z.string(), interval.nullable()),
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
  ab: abSchema.nullable(),
  server_stats: z.unknown().nullable(),
});

export type Report = z.infer<typeof reportSchema>;
export type ReportRun = z.infer<typeof run>;
export type ReportRatio = z.infer<typeof ratio>;
export type PeerReport = z.infer<typeof peerSchema>;
export type AbReport = z.infer<typeof abSchema>;
export type PairedInterval = z.infer<typeof interval>;
