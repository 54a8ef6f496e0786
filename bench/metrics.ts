/**
 * Per-request samples → per-run summaries, and run pairs → ratios. Pure functions over plain numbers, so the
 * numbers in a report can be checked by hand (test/unit/bench-metrics.test.ts does).
 */
import type { LookaheadBlock as ServerLookaheadBlock } from '../src/server/generation.js';

/** What the harness observed about one request. Fields a server does not report are null. */
export interface RequestSample {
  /** Which workload item and turn it was (`id#turn`), so arms can be paired prompt by prompt; null outside a run. */
  key: string | null;
  ok: boolean;
  /** Set when !ok: a short machine-friendly class (connect, timeout, http_429, stream_error, ...). */
  errorType: string | null;
  errorMessage: string | null;
  startMs: number;
  /** Time to the first non-empty content delta. */
  ttftMs: number | null;
  e2eMs: number;
  /** Gaps between consecutive content-bearing chunks (a chunk may carry several tokens with lookahead). */
  interChunkMs: number[];
  promptTokens: number | null;
  /** From usage when present, else the number of content-bearing chunks (a lower bound). */
  completionTokens: number;
  text: string;
  finishReason: string | null;
  lookahead: LookaheadBlock | null;
  acceptedPredictionTokens: number | null;
  rejectedPredictionTokens: number | null;
}

/** Fields of the server's per-response `lookahead` block that older servers do not send. */
type Newer = 'accepted_by_position' | 'draft_sizes' | 'forward_seconds' | 'decode_seconds';
/** The server's per-response `lookahead` block as received. */
export type LookaheadBlock = Omit<ServerLookaheadBlock, Newer> & Partial<Pick<ServerLookaheadBlock, Newer>>;

export interface Percentiles {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
}

export interface RunSummary {
  requests: number;
  completed: number;
  errors: Record<string, number>;
  durationS: number;
  requestsPerSecond: number;
  generatedTokens: number;
  promptTokens: number | null;
  /** Aggregate: all generated tokens over the run's wall time. */
  tokensPerSecond: number;
  /** Each request's own completion tokens / its end-to-end seconds. */
  tokensPerSecondPerRequest: Percentiles | null;
  ttftMs: Percentiles | null;
  interChunkMs: Percentiles | null;
  /** (e2e − ttft) / (tokens − 1): decode time per token after the first. */
  tpotMs: Percentiles | null;
  latencyMs: Percentiles | null;
  /** Step-weighted over requests that reported a lookahead block; null when none did. */
  tokensPerStep: number | null;
  /** Fraction of decode steps whose draft position i was accepted; null when the server reports no positions. */
  acceptanceByPosition: number[] | null;
  draftTokens: number | null;
  acceptedDraftTokens: number | null;
  /** Forward size (draft + root) → decode steps, summed over requests; null when the server does not say. */
  draftSizes: Record<string, number> | null;
  /** Server-side: ms in the model's forward per decode step, and decode wall ms per token after the first (its TPOT). */
  forwardMsPerStep: number | null;
  serverTpotMs: number | null;
}

/**
 * Linear interpolation between closest ranks (the "R-7" definition numpy and most dashboards use), so p50 of
 * an even-sized set is the mean of the middle two.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('percentile of an empty set');
  if (q < 0 || q > 1) throw new RangeError(`quantile ${q} is outside [0, 1]`);
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarise(values: readonly number[]): Percentiles | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    mean: sum / sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/** Tokens per step weighted by each request's step count: total tokens over total steps, whatever the server counts. */
export function tokensPerStep(blocks: readonly LookaheadBlock[]): number | null {
  let steps = 0;
  let tokens = 0;
  for (const b of blocks) {
    steps += b.steps;
    tokens += b.tokens_per_step * b.steps;
  }
  return steps > 0 ? tokens / steps : null;
}

export function acceptanceByPosition(blocks: readonly LookaheadBlock[]): number[] | null {
  const withPositions = blocks.filter((b) => Array.isArray(b.accepted_by_position));
  if (withPositions.length === 0) return null;
  let steps = 0;
  const accepted: number[] = [];
  for (const b of withPositions) {
    steps += b.steps;
    b.accepted_by_position!.forEach((count, i) => {
      accepted[i] = (accepted[i] ?? 0) + count;
    });
  }
  return steps > 0 ? Array.from(accepted, (c) => (c ?? 0) / steps) : null;
}

export function summariseRun(samples: readonly RequestSample[], durationS: number): RunSummary {
  const ok = samples.filter((s) => s.ok);
  const errors: Record<string, number> = {};
  for (const s of samples) if (!s.ok) errors[s.errorType ?? 'unknown'] = (errors[s.errorType ?? 'unknown'] ?? 0) + 1;
  const generatedTokens = ok.reduce((n, s) => n + s.completionTokens, 0);
  const prompts = ok.map((s) => s.promptTokens).filter((p): p is number => p !== null);
  const blocks = ok.map((s) => s.lookahead).filter((b): b is LookaheadBlock => b !== null);
  const tpot = ok.filter((s) => s.ttftMs !== null && s.completionTokens > 1).map((s) => (s.e2eMs - s.ttftMs!) / (s.completionTokens - 1));
  return {
    requests: samples.length,
    completed: ok.length,
    errors,
    durationS,
    requestsPerSecond: durationS > 0 ? ok.length / durationS : 0,
    generatedTokens,
    promptTokens: prompts.length === ok.length && ok.length > 0 ? prompts.reduce((a, b) => a + b, 0) : null,
    tokensPerSecond: durationS > 0 ? generatedTokens / durationS : 0,
    tokensPerSecondPerRequest: summarise(ok.filter((s) => s.e2eMs > 0).map((s) => s.completionTokens / (s.e2eMs / 1000))),
    ttftMs: summarise(ok.map((s) => s.ttftMs).filter((t): t is number => t !== null)),
    interChunkMs: summarise(ok.flatMap((s) => s.interChunkMs)),
    tpotMs: summarise(tpot),
    latencyMs: summarise(ok.map((s) => s.e2eMs)),
    tokensPerStep: tokensPerStep(blocks),
    acceptanceByPosition: acceptanceByPosition(blocks),
    draftTokens: blocks.length > 0 ? blocks.reduce((n, b) => n + b.draft_tokens, 0) : null,
    acceptedDraftTokens: blocks.length > 0 ? blocks.reduce((n, b) => n + b.accepted_tokens, 0) : null,
    ...serverTimes(ok),
  };
}

function serverTimes(ok: readonly RequestSample[]): Pick<RunSummary, 'draftSizes' | 'forwardMsPerStep' | 'serverTpotMs'> {
  const timed = ok.filter((s) => s.lookahead?.forward_seconds !== undefined && s.lookahead.decode_seconds !== undefined);
  const sized = ok.filter((s) => s.lookahead?.draft_sizes !== undefined);
  let steps = 0;
  let forward = 0;
  let decode = 0;
  let decodeTokens = 0;
  for (const s of timed) {
    steps += s.lookahead!.steps;
    forward += s.lookahead!.forward_seconds!;
    decode += s.lookahead!.decode_seconds!;
    decodeTokens += Math.max(0, s.completionTokens - 1);
  }
  const draftSizes: Record<string, number> = {};
  for (const s of sized) for (const [k, n] of Object.entries(s.lookahead!.draft_sizes!)) draftSizes[k] = (draftSizes[k] ?? 0) + n;
  return {
    draftSizes: sized.length > 0 ? draftSizes : null,
    forwardMsPerStep: steps > 0 ? (forward / steps) * 1000 : null,
    serverTpotMs: decodeTokens > 0 ? (decode / decodeTokens) * 1000 : null,
  };
}

export interface LabelledRun {
  label: string;
  concurrency: number | null;
  summary: RunSummary;
}

export interface Ratio {
  label: string;
  baseline: string;
  concurrency: number | null;
  /** >1 = faster than the baseline. */
  tokensPerSecond: number | null;
  tokensPerStep: number | null;
  /** <1 = lower latency than the baseline. */
  ttftP50: number | null;
  latencyP50: number | null;
  latencyP99: number | null;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;
}

/**
 * Each non-baseline run against the baseline run at the same concurrency (runs at a concurrency with no
 * baseline get no ratio: comparing across load levels would be meaningless).
 */
export function pairRatios(runs: readonly LabelledRun[], baseline = 'off'): Ratio[] {
  const base = new Map<number | null, RunSummary>();
  for (const r of runs) if (r.label === baseline) base.set(r.concurrency, r.summary);
  const out: Ratio[] = [];
  for (const r of runs) {
    const b = base.get(r.concurrency);
    if (r.label === baseline || !b) continue;
    out.push({
      label: r.label,
      baseline,
      concurrency: r.concurrency,
      tokensPerSecond: ratio(r.summary.tokensPerSecond, b.tokensPerSecond),
      tokensPerStep: ratio(r.summary.tokensPerStep, b.tokensPerStep ?? (r.summary.tokensPerStep === null ? null : 1)),
      ttftP50: ratio(r.summary.ttftMs?.p50, b.ttftMs?.p50),
      latencyP50: ratio(r.summary.latencyMs?.p50, b.latencyMs?.p50),
      latencyP99: ratio(r.summary.latencyMs?.p99, b.latencyMs?.p99),
    });
  }
  return out;
}
