import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import type { Percentiles, Ratio, RunSummary } from '../metrics.js';
import type { RssPoint } from '../rss.js';
import { REPORT_SCHEMA_VERSION, type Report, type ReportRatio, type ReportRun } from './schema.js';

export interface RunMeta {
  label: string;
  concurrency: number | null;
  requestsPerSecondTarget: number | null;
  lookahead: Record<string, unknown> | null;
  rss: RssPoint[] | null;
}

export function toReportRun(meta: RunMeta, s: RunSummary): ReportRun {
  return {
    label: meta.label,
    concurrency: meta.concurrency,
    requests_per_second_target: meta.requestsPerSecondTarget,
    lookahead: meta.lookahead,
    requests: s.requests,
    completed: s.completed,
    errors: s.errors,
    duration_s: s.durationS,
    requests_per_second: s.requestsPerSecond,
    generated_tokens: s.generatedTokens,
    prompt_tokens: s.promptTokens,
    tokens_per_second: s.tokensPerSecond,
    tokens_per_second_per_request: pct(s.tokensPerSecondPerRequest),
    tokens_per_step: s.tokensPerStep,
    acceptance_by_position: s.acceptanceByPosition,
    draft_tokens: s.draftTokens,
    accepted_draft_tokens: s.acceptedDraftTokens,
    ttft_ms: pct(s.ttftMs),
    inter_chunk_ms: pct(s.interChunkMs),
    tpot_ms: pct(s.tpotMs),
    latency_ms: pct(s.latencyMs),
    rss_bytes: meta.rss,
    draft_sizes: s.draftSizes,
    forward_ms_per_step: s.forwardMsPerStep,
    server_tpot_ms: s.serverTpotMs,
  };
}

export function toReportRatio(r: Ratio): ReportRatio {
  return {
    label: r.label,
    baseline: r.baseline,
    concurrency: r.concurrency,
    tokens_per_second: r.tokensPerSecond,
    tokens_per_step: r.tokensPerStep,
    ttft_p50: r.ttftP50,
    latency_p50: r.latencyP50,
    latency_p99: r.latencyP99,
  };
}

function pct(p: Percentiles | null): Percentiles | null {
  return p ? { ...p } : null;
}

export function machineInfo(): Report['machine'] {
  const cpu = cpus();
  return {
    cpu_model: cpu[0]?.model.trim() || 'unknown',
    cores: Math.max(1, cpu.length),
    total_memory_bytes: totalmem(),
    platform: process.platform,
    arch: process.arch,
    node_version: process.version,
    ort_version: ortVersion(),
  };
}

/** Read from the installed package, not imported: loading the native binding just to print a version is wasteful. */
function ortVersion(): string | null {
  try {
    const path = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

/** A report stamped with the schema version, the time and this machine. */
export function newReport(body: Omit<Report, 'schema_version' | 'created_at' | 'machine'>): Report {
  return { schema_version: REPORT_SCHEMA_VERSION, created_at: new Date().toISOString(), machine: machineInfo(), ...body };
}

/** Requests of a report's runs that did not complete, and all of them. */
export function requestCounts(runs: readonly ReportRun[]): { failed: number; total: number } {
  return {
    failed: runs.reduce((n, r) => n + (r.requests - r.completed), 0),
    total: runs.reduce((n, r) => n + r.requests, 0),
  };
}
