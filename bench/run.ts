import type { Target } from './client.js';
import { BenchError } from './errors.js';
import { runLoad, type Arrival } from './load.js';
import { pairRatios, summariseRun, type LabelledRun, type RequestSample } from './metrics.js';
import { Progress } from './progress.js';
import { machineInfo, toReportRatio, toReportRun, type RunMeta } from './report/build.js';
import { REPORT_SCHEMA_VERSION, type Report } from './report/schema.js';
import { RssSampler, type RssPoint } from './rss.js';
import { spawnServer, type SpawnedServer } from './server-process.js';
import { discoverModel, fetchLookaheadStats, postDocuments, resolveTarget } from './target.js';
import { loadWorkload, splitWarmup, warmupDocuments, type WorkloadShape } from './workload.js';

/** One arm of a comparison: what goes into the request body's `lookahead` field (null = send nothing). */
export interface Arm {
  label: string;
  lookahead: Record<string, unknown> | null;
}

export interface BenchOptions {
  kind: 'load' | 'ab';
  command: string;
  /** null: start our own server as a child process. */
  baseUrl: string | null;
  /** Model path for a spawned server (null = its shipped default, chat-llama-5m). */
  modelPath: string | null;
  modelId: string | null;
  serverArgs: string[];
  allowRemote: boolean;
  apiKey: string | null;
  workload: string;
  shape: WorkloadShape;
  categories: string[];
  repeat: number;
  warmup: number;
  /** Warm the global trie with the model's own answers to the warm-up items (the paper's protocol) or their references. */
  warmupFrom: 'answers' | 'references';
  /** Per arm and load level. */
  requests: number | null;
  durationS: number | null;
  concurrency: number[];
  /** Open loop instead of fixed concurrency. */
  rate: number | null;
  seed: number;
  maxTokens: number;
  rounds: number;
  arms: Arm[];
  requestTimeoutMs: number;
  startupTimeoutMs: number;
  quiet: boolean;
  /** Measured after the runs, in this process, when the model is known (spawned server). */
  forwardCost: ((modelPath: string | null) => Promise<{ k: number; ms: number }[]>) | null;
}

export interface BenchOutcome {
  report: Report;
  failed: number;
  total: number;
}

/**
 * Runs every arm at every load level. Rounds interleave the arms (A B A B …) so slow drift (thermal, other
 * tenants, trie growth) falls on all arms alike. Every run sends its own slice of the workload: if two arms sent
 * the same prompt, the second would draft from the first one's answer in the global trie and look faster than
 * it is. When the workload is too small for that, it wraps and the report says so (`reused_items`).
 */
export async function runBench(o: BenchOptions): Promise<BenchOutcome> {
  if (o.rounds < 1) throw new BenchError('--rounds must be at least 1');
  if (o.requests !== null && o.requests < o.rounds) throw new BenchError(`--requests ${o.requests} is fewer than --rounds ${o.rounds}`);
  const all = loadWorkload(o.workload, { shape: o.shape, categories: o.categories, repeat: o.repeat });
  const { warmup, measured } = o.warmup > 0 ? splitWarmup(all, o.warmup) : { warmup: [], measured: all };
  const levels: (number | null)[] = o.rate !== null ? [null] : o.concurrency;
  if (levels.length === 0) throw new BenchError('--concurrency needs at least one level');
  const maxConcurrency = Math.max(1, ...o.concurrency);

  let server: SpawnedServer | null = null;
  let target: Target | null = null;
  try {
    if (o.baseUrl === null) {
      if (!o.quiet) process.stderr.write(`starting the server${o.modelPath ? ` on ${o.modelPath}` : ' (shipped default model)'}…\n`);
      server = await spawnServer({ model: o.modelPath, extraArgs: o.serverArgs, startupTimeoutMs: o.startupTimeoutMs });
    }
    target = resolveTarget(server?.baseUrl ?? o.baseUrl!, { allowRemote: o.allowRemote, apiKey: o.apiKey, requestTimeoutMs: o.requestTimeoutMs, connections: maxConcurrency + 4 });
    const model = await discoverModel(target, o.modelId);

    let warmupApplied: boolean | null = null;
    if (warmup.length > 0 && o.warmupFrom === 'references') {
      warmupApplied = await postDocuments(target, warmupDocuments(warmup));
      if (!warmupApplied && !o.quiet) process.stderr.write('warm-up skipped: the server has no POST /v1/lookahead/documents\n');
    } else if (warmup.length > 0) {
      // The paper's protocol: the model answers the warm-up half first, and its own answers warm the global trie.
      if (!o.quiet) process.stderr.write(`warm-up: ${warmup.length} requests whose answers feed the global trie…\n`);
      const result = await runLoad({
        target,
        model,
        items: warmup,
        arrival: { kind: 'concurrency', concurrency: maxConcurrency },
        requests: warmup.length,
        durationS: null,
        maxTokens: o.maxTokens,
        extraBody: {},
        firstItem: 0,
        onSample: () => {},
      });
      warmupApplied = result.samples.every((sample) => sample.ok);
    }

    const totalRequests = o.requests === null ? null : o.requests * o.arms.length * levels.length;
    const progress = new Progress(o.kind, totalRequests ?? 0, o.quiet);
    const slices = levels.length * o.rounds * o.arms.length;
    const sliceLen = Math.max(1, Math.floor(measured.length / slices));
    let cursor = 0;
    let reusedItems = false;
    const collected = new Map<string, { meta: RunMeta; samples: RequestSample[]; durationS: number }>();
    for (const level of levels) {
      for (let round = 0; round < o.rounds; round++) {
        const share = (n: number) => Math.floor((n * (round + 1)) / o.rounds) - Math.floor((n * round) / o.rounds);
        for (const arm of o.arms) {
          const key = `${arm.label}@${level}`;
          let entry = collected.get(key);
          if (!entry) {
            entry = { meta: { label: arm.label, concurrency: level, requestsPerSecondTarget: o.rate, lookahead: arm.lookahead, rss: null }, samples: [], durationS: 0 };
            collected.set(key, entry);
          }
          const arrival: Arrival = level === null ? { kind: 'rate', requestsPerSecond: o.rate!, seed: o.seed + round } : { kind: 'concurrency', concurrency: level };
          const count = o.requests === null ? null : share(o.requests);
          const firstItem = cursor;
          cursor += count ?? sliceLen;
          const rss = new RssSampler(target, server?.pid ?? null);
          rss.begin();
          const result = await runLoad({
            target,
            model,
            items: measured,
            arrival,
            requests: count,
            durationS: o.durationS === null ? null : o.durationS / o.rounds,
            maxTokens: o.maxTokens,
            extraBody: arm.lookahead ? { lookahead: arm.lookahead } : {},
            firstItem,
            onSample: (s) => progress.tick(s.ok),
          });
          // Follow-up turns count as samples, so for sessions this errs towards saying "reused".
          if (cursor > measured.length || (count === null && result.samples.length > sliceLen)) reusedItems = true;
          const points = await rss.end();
          if (points) entry.meta.rss = [...(entry.meta.rss ?? []), ...shift(points, entry.durationS)];
          entry.samples.push(...result.samples);
          entry.durationS += result.durationS;
        }
      }
    }
    progress.finish();

    const runs: LabelledRun[] = [];
    const reportRuns = [];
    for (const { meta, samples, durationS } of collected.values()) {
      const summary = summariseRun(samples, durationS);
      runs.push({ label: meta.label, concurrency: meta.concurrency, summary });
      reportRuns.push(toReportRun(meta, summary));
    }
    const baseline = o.arms[0].label;
    const serverStats = await fetchLookaheadStats(target);
    const forwardCost = o.forwardCost && server ? await o.forwardCost(o.modelPath) : null;
    const failed = reportRuns.reduce((n, r) => n + (r.requests - r.completed), 0);
    const total = reportRuns.reduce((n, r) => n + r.requests, 0);
    const report: Report = {
      schema_version: REPORT_SCHEMA_VERSION,
      kind: o.kind,
      created_at: new Date().toISOString(),
      command: o.command,
      machine: machineInfo(),
      model: { id: model, path: o.modelPath },
      config: {
        base_url: o.baseUrl,
        server: server ? 'spawned' : 'external',
        workload: { path: o.workload, shape: o.shape, items: measured.length, warmup_items: warmup.length, warmup_applied: warmupApplied, reused_items: reusedItems },
        requests: o.requests,
        duration_s: o.durationS,
        max_tokens: o.maxTokens,
        concurrency: o.rate !== null ? [] : o.concurrency,
        rounds: o.rounds,
        labels: o.arms.map((a) => a.label),
      },
      runs: reportRuns,
      ratios: pairRatios(runs, baseline).map(toReportRatio),
      forward_cost: forwardCost,
      peer: null,
      server_stats: serverStats,
    };
    return { report, failed, total };
  } finally {
    await target?.dispatcher.close();
    await server?.stop();
  }
}

function shift(points: RssPoint[], by: number): RssPoint[] {
  return points.map((p) => ({ t: p.t + by, bytes: p.bytes }));
}
