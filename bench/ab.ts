/**
 * The fair A/B: lookahead off against each layout on exactly the same prompts. At each concurrency level the prompts
 * go in blocks of that many at once, and each block is sent to every arm back to back in ABBA order, so drift (other
 * processes, heat) falls on all arms alike. Every arm at every level answers as its own tenant, with its own global
 * trie, warmed by itself (`--warmup`): no arm drafts from another arm's answer, nor from its own answer to the same
 * prompt at another level. Ratios are paired per prompt, with a seeded bootstrap interval.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../src/config/defaults.js';
import type { Target } from './client.js';
import { BenchError } from './errors.js';
import { runLoad } from './load.js';
import { pairRatios, summariseRun, type LabelledRun, type RequestSample } from './metrics.js';
import { abbaOrder, bootstrapRatio, DEFAULT_LEVEL, DEFAULT_RESAMPLES, perPromptRatios } from './paired.js';
import { Progress } from './progress.js';
import { newReport, requestCounts, toReportRatio, toReportRun } from './report/build.js';
import type { AbReport } from './report/schema.js';
import type { Arm, BenchOutcome } from './run.js';
import { spawnServer, type SpawnedServer } from './server-process.js';
import { discoverModel, fetchLookaheadStats, postDocuments, resolveTarget } from './target.js';
import { loadWorkload, splitWarmup, warmupDocuments, type WorkloadItem, type WorkloadShape } from './workload.js';

export interface AbOptions {
  command: string;
  /** null: start our own server, configured with one API key (tenant) per arm and level. */
  baseUrl: string | null;
  modelPath: string | null;
  modelId: string | null;
  serverArgs: string[];
  allowRemote: boolean;
  /** Another server: one API key per arm and level, level by level, each a tenant of its own there. */
  tenantKeys: string[] | null;
  /** For /v1/lookahead/stats on another server. */
  adminKey: string | null;
  workload: string;
  shape: WorkloadShape;
  categories: string[];
  repeat: number;
  warmup: number;
  warmupFrom: 'answers' | 'references';
  /** Measured prompts: the same ones for every arm at every level. */
  prompts: number;
  concurrency: number[];
  maxTokens: number;
  /** The first arm is the baseline. */
  arms: Arm[];
  /** Seeds the bootstrap. */
  seed: number;
  requestTimeoutMs: number;
  startupTimeoutMs: number;
  quiet: boolean;
  forwardCost: ((modelPath: string | null) => Promise<{ k: number; ms: number }[]>) | null;
}

export interface AbOutcome extends BenchOutcome {
  /** Every request of every arm and level, for callers that pair more (the peer commands). */
  samples: CollectedRun[];
}

/** A run that fails this many requests before any succeeds is abandoned (a broken server, not a noisy one). */
const FAIL_FAST = 5;

export async function runAb(o: AbOptions): Promise<AbOutcome> {
  if (o.arms.length < 2) throw new BenchError('ab needs a baseline and at least one other arm');
  const all = loadWorkload(o.workload, { shape: o.shape, categories: o.categories, repeat: o.repeat });
  const { warmup, measured: rest } = o.warmup > 0 ? splitWarmup(all, o.warmup) : { warmup: [], measured: all };
  if (rest.length < o.prompts) throw new BenchError(`--requests ${o.prompts}: the workload has only ${rest.length} prompts after the ${warmup.length} warm-up ones`);
  const prompts = rest.slice(0, o.prompts);
  const levels = o.concurrency;
  if (levels.length === 0) throw new BenchError('--concurrency needs at least one level');
  const tenantCount = levels.length * o.arms.length;
  if (o.baseUrl !== null && (o.tenantKeys === null || o.tenantKeys.length !== tenantCount)) {
    throw new BenchError(
      `ab against --base-url needs --tenant-keys with ${tenantCount} API keys (one per arm and level, level by level: ${levels.flatMap((c) => o.arms.map((a) => `${a.label}@${c}`)).join(', ')}), each its own tenant on that server, so no arm drafts from another's answers`,
      2,
    );
  }
  const keys = o.tenantKeys ?? levels.flatMap((c) => o.arms.map((a) => `bench-${a.label}-c${c}`));
  const keyOf = (li: number, ai: number) => keys[li * o.arms.length + ai];
  const maxConcurrency = Math.max(...levels);

  let server: SpawnedServer | null = null;
  let configDir: string | null = null;
  let base: Target | null = null;
  try {
    let adminKey = o.adminKey;
    if (o.baseUrl === null) {
      configDir = mkdtempSync(join(tmpdir(), 'bench-ab-'));
      adminKey = 'bench-admin';
      const configPath = join(configDir, 'config.json');
      writeFileSync(configPath, JSON.stringify(serverConfig(keys, adminKey)));
      if (!o.quiet) process.stderr.write(`starting the server${o.modelPath ? ` on ${o.modelPath}` : ' (shipped default model)'}, ${tenantCount} tenants…\n`);
      // The caller's --server-arg flags come last: flags beat the config file.
      server = await spawnServer({ model: o.modelPath, extraArgs: ['--config', configPath, ...o.serverArgs], startupTimeoutMs: o.startupTimeoutMs, clients: maxConcurrency });
    }
    base = resolveTarget(server?.baseUrl ?? o.baseUrl!, { allowRemote: o.allowRemote, apiKey: keys[0], requestTimeoutMs: o.requestTimeoutMs, connections: maxConcurrency + 4 });
    const as = (apiKey: string | null): Target => ({ ...base!, apiKey });
    const model = await discoverModel(base, o.modelId);

    const turns = (items: readonly WorkloadItem[]) => items.reduce((n, it) => n + 1 + (it.followUps?.length ?? 0), 0);
    const progress = new Progress('ab', tenantCount * (turns(prompts) + (o.warmupFrom === 'answers' ? turns(warmup) : 0)), o.quiet);
    // runLoad's own fail-fast looks at one call; here a call may be one request, so it is counted over the whole run.
    let failedBeforeAnyOk = 0;
    let anyOk = false;
    let fatal: string | null = null;
    const stop = new AbortController();
    const send = async (target: Target, items: readonly WorkloadItem[], concurrency: number, arm: Arm) => {
      const result = await runLoad({
        target, model, items, arrival: { kind: 'concurrency', concurrency }, requests: turns(items), durationS: null, maxTokens: o.maxTokens,
        extraBody: arm.lookahead ? { lookahead: arm.lookahead } : {}, failFast: Number.POSITIVE_INFINITY, signal: stop.signal,
        onSample: (s) => {
          progress.tick(s.ok);
          anyOk ||= s.ok;
          if (!anyOk && ++failedBeforeAnyOk >= FAIL_FAST && fatal === null) {
            fatal = `the first ${FAIL_FAST} requests all failed; last: ${s.errorType}: ${s.errorMessage}`;
            stop.abort();
          }
        },
      });
      if (fatal !== null) throw new BenchError(fatal);
      return result;
    };

    let warmupApplied: boolean | null = null;
    const collected: { label: string; concurrency: number; lookahead: Arm['lookahead']; samples: RequestSample[]; durationS: number }[] = [];
    for (const [li, c] of levels.entries()) {
      // Each tenant warms its own trie with its own answers (or the references) before anything is measured, at the
      // level's own concurrency: the forwards it runs teach the engine's cost curve and draft floor for that batch size.
      if (warmup.length > 0) {
        for (const ai of abbaOrder(o.arms.map((_, i) => i), li)) {
          const target = as(keyOf(li, ai));
          const ok = o.warmupFrom === 'references' ? await postDocuments(target, warmupDocuments(warmup)) : (await send(target, warmup, c, o.arms[ai])).samples.every((s) => s.ok);
          warmupApplied = (warmupApplied ?? true) && ok;
        }
      }
      const runs = o.arms.map((arm) => ({ label: arm.label, concurrency: c, lookahead: arm.lookahead, samples: [] as RequestSample[], durationS: 0 }));
      for (let b = 0; b * c < prompts.length; b++) {
        const block = prompts.slice(b * c, (b + 1) * c);
        for (const ai of abbaOrder(o.arms.map((_, i) => i), b)) {
          const { samples, durationS } = await send(as(keyOf(li, ai)), block, c, o.arms[ai]);
          runs[ai].samples.push(...samples);
          runs[ai].durationS += durationS;
        }
      }
      collected.push(...runs);
    }
    progress.finish();

    const labelled: LabelledRun[] = collected.map((r) => ({ label: r.label, concurrency: r.concurrency, summary: summariseRun(r.samples, r.durationS) }));
    const reportRuns = collected.map((r, i) => toReportRun({ label: r.label, concurrency: r.concurrency, requestsPerSecondTarget: null, lookahead: r.lookahead, rss: null }, labelled[i].summary));
    const ab = abSection(o, collected, labelled, warmup.length);
    const serverStats = await fetchLookaheadStats(as(adminKey));
    const forwardCost = o.forwardCost && server ? await o.forwardCost(o.modelPath) : null;
    const { failed, total } = requestCounts(reportRuns);
    const report = newReport({
      kind: 'ab',
      command: o.command,
      model: { id: model, path: o.modelPath },
      config: {
        base_url: o.baseUrl,
        server: server ? 'spawned' : 'external',
        workload: { path: o.workload, shape: o.shape, items: prompts.length, warmup_items: warmup.length, warmup_applied: warmupApplied, reused_items: false },
        requests: o.prompts,
        duration_s: null,
        max_tokens: o.maxTokens,
        concurrency: levels,
        rounds: 1,
        labels: o.arms.map((a) => a.label),
      },
      runs: reportRuns,
      ratios: pairRatios(labelled, o.arms[0].label).map(toReportRatio),
      forward_cost: forwardCost,
      peer: null,
      ab,
      server_stats: serverStats,
    });
    return { report, failed, total, samples: collected };
  } finally {
    await base?.dispatcher.close();
    await server?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  }
}

/** What the spawned server needs beyond its defaults: the tenants and an admin key for the stats. */
function serverConfig(keys: string[], adminKey: string): unknown {
  return {
    auth: { apiKeys: keys.map((key) => ({ key, tenant: key })), adminKey },
    globalTrie: { maxTenants: Math.max(defaultConfig(process.env).globalTrie.maxTenants, keys.length) },
  };
}

/** Per-request measures the arms are paired on. */
/**
 * Aggregate decode tokens/s of a level: `concurrency` requests decoding side by side, each at the level's pooled
 * rate Σ(tokens − 1) / Σ(e2e − TTFT). Unlike tokens over wall time it leaves prefill out: a block of c prompts
 * arriving at once prefills c prompts before its last stream starts, which says nothing about batched decoding.
 */
export function aggregateDecode(samples: readonly RequestSample[], concurrency: number): number | null {
  let tokens = 0;
  let ms = 0;
  for (const s of samples) {
    if (decodeTokensPerSecond(s) === null) continue;
    tokens += s.completionTokens - 1;
    ms += s.e2eMs - s.ttftMs!;
  }
  return ms > 0 ? (concurrency * tokens) / (ms / 1000) : null;
}

export function decodeTokensPerSecond(s: RequestSample): number | null {
  if (!s.ok || s.ttftMs === null || s.completionTokens < 2 || s.e2eMs <= s.ttftMs) return null;
  return (s.completionTokens - 1) / ((s.e2eMs - s.ttftMs) / 1000);
}

function byKey(samples: readonly RequestSample[], measure: (s: RequestSample) => number | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    const v = measure(s);
    if (s.key !== null && v !== null) out.set(s.key, v);
  }
  return out;
}

export interface CollectedRun {
  label: string;
  concurrency: number;
  samples: RequestSample[];
}

/** Paired ratios of every arm against the baseline at each level, and each arm's scaling over levels. */
export function abSection(o: Pick<AbOptions, 'seed' | 'arms'>, runs: readonly CollectedRun[], labelled: readonly LabelledRun[], warmup: number): AbReport {
  const baseline = o.arms[0].label;
  const boot = { seed: o.seed, resamples: DEFAULT_RESAMPLES, level: DEFAULT_LEVEL };
  const paired: AbReport['paired'] = [];
  for (const run of runs) {
    if (run.label === baseline) continue;
    const base = runs.find((r) => r.label === baseline && r.concurrency === run.concurrency)!;
    const pair = (measure: (s: RequestSample) => number | null) => bootstrapRatio(perPromptRatios(byKey(base.samples, measure), byKey(run.samples, measure)), boot);
    const baseText = new Map(base.samples.filter((s) => s.ok && s.key !== null).map((s) => [s.key!, s.text]));
    const compared = run.samples.filter((s) => s.ok && s.key !== null && baseText.has(s.key));
    paired.push({
      label: run.label,
      baseline,
      concurrency: run.concurrency,
      identical_outputs: compared.filter((s) => baseText.get(s.key!) === s.text).length,
      compared_outputs: compared.length,
      decode_tokens_per_second: pair(decodeTokensPerSecond),
      tpot: pair((s) => {
        const tps = decodeTokensPerSecond(s);
        return tps === null ? null : 1000 / tps;
      }),
      tokens_per_step: pair((s) => (s.ok ? (s.lookahead?.tokens_per_step ?? null) : null)),
    });
  }
  const decodeOf = (label: string, c: number) => aggregateDecode(runs.find((x) => x.label === label && x.concurrency === c)?.samples ?? [], c);
  const scaling = labelled.map((r) => {
    const one = labelled.find((x) => x.label === r.label && x.concurrency === 1);
    const decode = decodeOf(r.label, r.concurrency!);
    const decodeOne = decodeOf(r.label, 1);
    return {
      label: r.label,
      concurrency: r.concurrency!,
      tokens_per_second: r.summary.tokensPerSecond,
      vs_one_client: one && one.summary.tokensPerSecond > 0 ? r.summary.tokensPerSecond / one.summary.tokensPerSecond : null,
      decode_tokens_per_second: decode,
      decode_vs_one_client: decode !== null && decodeOne ? decode / decodeOne : null,
      ttft_p50_ms: r.summary.ttftMs?.p50 ?? null,
    };
  });
  return {
    isolation: 'one tenant (global trie) per arm and concurrency level, each warmed by its own answers',
    order: 'blocks of <concurrency> prompts, each block sent to every arm back to back, ABBA',
    prompts: Math.max(0, ...runs.map((r) => new Set(r.samples.map((s) => s.key)).size)),
    warmup_per_tenant: warmup,
    bootstrap: boot,
    paired,
    scaling,
  };
}
