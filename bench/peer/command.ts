import { BenchError } from '../errors.js';
import { runLoad } from '../load.js';
import { pairRatios, summariseRun, type LabelledRun } from '../metrics.js';
import { Progress } from '../progress.js';
import { machineInfo, toReportRatio, toReportRun } from '../report/build.js';
import { REPORT_SCHEMA_VERSION, type PeerReport, type Report } from '../report/schema.js';
import { spawnServer } from '../server-process.js';
import { discoverModel, resolveTarget } from '../target.js';
import { loadWorkload } from '../workload.js';
import { runTransformersJs } from './transformers.js';

export interface PeerOptions {
  command: string;
  /** What our server loads (HF dir): the same weights as the peer's export. */
  modelPath: string;
  /** Standard-layout ONNX export of those weights, which transformers.js loads. */
  peerModel: string;
  workload: string;
  categories: string[];
  requests: number;
  maxTokens: number;
  layout: string;
  requestTimeoutMs: number;
  startupTimeoutMs: number;
  quiet: boolean;
}

const PEER = 'transformers.js';

/**
 * transformers.js in-process vs our server with lookahead off and on: same prompts, same max tokens, greedy,
 * one request at a time. The peer runs first, while no server exists, so neither steals the other's cores.
 */
export async function runPeerComparison(o: PeerOptions): Promise<Report> {
  const items = loadWorkload(o.workload, { shape: 'plain', categories: o.categories, repeat: 1 }).slice(0, o.requests);
  if (items.length < o.requests) throw new BenchError(`the workload has only ${items.length} requests; asked for ${o.requests}`);
  const progress = new Progress('peer', items.length * 3, o.quiet);
  const peer = await runTransformersJs(o.peerModel, items.map((i) => i.messages), o.maxTokens, () => progress.tick(true));

  const server = await spawnServer({ model: o.modelPath, extraArgs: [], startupTimeoutMs: o.startupTimeoutMs });
  const target = resolveTarget(server.baseUrl, { allowRemote: false, apiKey: null, requestTimeoutMs: o.requestTimeoutMs, connections: 2 });
  const arms = [
    { label: 'off', lookahead: { enabled: false } },
    { label: o.layout, lookahead: { enabled: true, layout: o.layout } },
  ];
  const runs: LabelledRun[] = [];
  const texts = new Map<string, string[]>();
  let modelId: string;
  try {
    modelId = await discoverModel(target, null);
    for (const arm of arms) {
      const { samples, durationS } = await runLoad({
        target,
        model: modelId,
        items,
        arrival: { kind: 'concurrency', concurrency: 1 },
        requests: items.length,
        durationS: null,
        maxTokens: o.maxTokens,
        extraBody: { lookahead: arm.lookahead },
        onSample: (s) => progress.tick(s.ok),
      });
      runs.push({ label: arm.label, concurrency: 1, summary: summariseRun(samples, durationS) });
      texts.set(arm.label, samples.map((s) => (s.ok ? s.text : '\u0000failed')));
    }
  } finally {
    progress.finish();
    await target.dispatcher.close();
    await server.stop();
  }

  const peerTokens = peer.reduce((n, p) => n + p.tokens, 0);
  const peerSeconds = peer.reduce((n, p) => n + p.seconds, 0);
  const peerTps = peerSeconds > 0 ? peerTokens / peerSeconds : 0;
  const identical = (label: string) => texts.get(label)!.filter((t, i) => t.trim() === peer[i].text.trim()).length;
  const peerReport: PeerReport = {
    engine: PEER,
    model_path: o.peerModel,
    prompts: items.length,
    max_tokens: o.maxTokens,
    runs: [
      { label: PEER, tokens_per_second: peerTps, generated_tokens: peerTokens, duration_s: peerSeconds },
      ...runs.map((r) => ({ label: `ours ${r.label}`, tokens_per_second: r.summary.tokensPerSecond, generated_tokens: r.summary.generatedTokens, duration_s: r.summary.durationS })),
    ],
    ratios: Object.fromEntries(runs.map((r) => [`ours ${r.label} / ${PEER}`, peerTps > 0 ? r.summary.tokensPerSecond / peerTps : null])),
    // Text, not ids: our server streams text. Identical greedy text on every prompt means identical tokens in practice.
    agreement: { compared: items.length, identical: Math.min(identical('off'), identical(o.layout)), basis: 'text' },
  };
  return {
    schema_version: REPORT_SCHEMA_VERSION,
    kind: 'peer-transformers',
    created_at: new Date().toISOString(),
    command: o.command,
    machine: machineInfo(),
    model: { id: modelId, path: o.modelPath },
    config: {
      base_url: null,
      server: 'spawned',
      workload: { path: o.workload, shape: 'plain', items: items.length, warmup_items: 0, warmup_applied: null, reused_items: false },
      requests: items.length,
      duration_s: null,
      max_tokens: o.maxTokens,
      concurrency: [1],
      rounds: 1,
      labels: arms.map((a) => a.label),
    },
    runs: runs.map((r, i) => toReportRun({ label: r.label, concurrency: 1, requestsPerSecondTarget: null, lookahead: arms[i].lookahead, rss: null }, r.summary)),
    ratios: pairRatios(runs).map(toReportRatio),
    forward_cost: null,
    peer: peerReport,
    ab: null,
    server_stats: null,
  };
}
