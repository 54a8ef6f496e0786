import type { Target } from './client.js';
import { BenchError } from './errors.js';
import { runLoad, type Arrival } from './load.js';
import { summariseRun, type RequestSample } from './metrics.js';
import { Progress } from './progress.js';
import { newReport, requestCounts, toReportRun, type RunMeta } from './report/build.js';
import type { Report } from './report/schema.js';
import { RssSampler, type RssPoint } from './rss.js';
import { spawnServer, type SpawnedServer } from './server-process.js';
import { discoverModel, fetchLookaheadStats, postDocuments, resolveTarget } from './target.js';
import { loadWorkload, splitWarmup, warmupDocuments, type WorkloadShape } from './workload.js';

/** One arm of a comparison: what goes into the request body's `lookahead` field (null = send nothing). */
export interface Arm {
  label: string;
  lookahead: Record<string, unknown> | null;
}

/** `load`: one arm at each load level, against a running server or one it starts on `--model`. */
export interface BenchOptions {
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
  arm: Arm;
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
 * Runs the arm at every load level, in rounds. Every round sends its own slice of the workload: a prompt sent twice
 * would draft from its own earlier answer in the global trie the second time. When the workload is too small for
 * that, it wraps and the report says so (`reused_items`). Comparing arms is `ab`'s job (bench/ab.ts).
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
      server = await spawnServer({ model: o.modelPath, extraArgs: o.serverArgs, startupTimeoutMs: o.startupTimeoutMs, clients: maxConcurrency });
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

    const totalRequests = o.requests === null ? null : o.requests * levels.length;
    const progress = new Progress('load', totalRequests ?? 0, o.quiet);
    const slices = levels.length * o.rounds;
    const sliceLen = Math.max(1, Math.floor(measured.length / slices));
    let cursor = 0;
    let reusedItems = false;
    const arm = o.arm;
    const collected: { meta: RunMeta; samples: RequestSample[]; durationS: number }[] = [];
    for (const level of levels) {
      const entry = { meta: { label: arm.label, concurrency: level, requestsPerSecondTarget: o.rate, lookahead: arm.lookahead, rss: null as RssPoint[] | null }, samples: [] as RequestSample[], durationS: 0 };
      collected.push(entry);
      for (let round = 0; round < o.rounds; round++) {
        const share = (n: number) => Math.floor((n * (round + 1)) / o.rounds) - Math.floor((n * round) / o.rounds);
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
    progress.finish();

    const reportRuns = collected.map(({ meta, samples, durationS }) => toReportRun(meta, summariseRun(samples, durationS)));
    const serverStats = await fetchLookaheadStats(target);
    const forwardCost = o.forwardCost && server ? await o.forwardCost(o.modelPath) : null;
    const { failed, total } = requestCounts(reportRuns);
    const report = newReport({
      kind: 'load',
      command: o.command,
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
        labels: [arm.label],
      },
      runs: reportRuns,
      ratios: [],
      forward_cost: forwardCost,
      peer: null,
      ab: null,
      server_stats: serverStats,
    });
    return { report, failed, total };
  } finally {
    await target?.dispatcher.close();
    await server?.stop();
  }
}

function shift(points: RssPoint[], by: number): RssPoint[] {
  return points.map((p) => ({ t: p.t + by, bytes: p.bytes }));
}
