import { runAb } from '../ab.js';
import { BenchError } from '../errors.js';
import type { RequestSample } from '../metrics.js';
import { bootstrapRatio, perPromptRatios } from '../paired.js';
import { Progress } from '../progress.js';
import type { PeerReport, Report } from '../report/schema.js';
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
  /** Seeds the bootstrap of the paired ratios. */
  seed: number;
  requestTimeoutMs: number;
  startupTimeoutMs: number;
  quiet: boolean;
}

const PEER = 'transformers.js';

/**
 * transformers.js in-process vs our server with lookahead off and on: same prompts, same max tokens, greedy, one
 * request at a time. The peer runs first, while no server exists, so neither steals the other's cores; our two arms
 * are `ab`'s fair A/B (prompt by prompt in ABBA order, a tenant each), and every ratio is paired per prompt.
 */
export async function runPeerComparison(o: PeerOptions): Promise<Report> {
  const items = loadWorkload(o.workload, { shape: 'plain', categories: o.categories, repeat: 1 }).slice(0, o.requests);
  if (items.length < o.requests) throw new BenchError(`the workload has only ${items.length} requests; asked for ${o.requests}`);
  const progress = new Progress('peer', items.length, o.quiet);
  const peer = await runTransformersJs(o.peerModel, items.map((i) => i.messages), o.maxTokens, () => progress.tick(true));
  progress.finish();

  const arms = [
    { label: 'off', lookahead: { enabled: false } },
    { label: o.layout, lookahead: { enabled: true, layout: o.layout } },
  ];
  const { report, samples } = await runAb({
    command: o.command, baseUrl: null, modelPath: o.modelPath, modelId: null, serverArgs: [], allowRemote: false, tenantKeys: null, adminKey: null,
    workload: o.workload, shape: 'plain', categories: o.categories, repeat: 1, warmup: 0, warmupFrom: 'answers', prompts: items.length,
    concurrency: [1], maxTokens: o.maxTokens, arms, seed: o.seed, requestTimeoutMs: o.requestTimeoutMs, startupTimeoutMs: o.startupTimeoutMs,
    quiet: o.quiet, forwardCost: null,
  });
  const byPrompt = (label: string) => new Map(samples.find((r) => r.label === label)!.samples.map((s) => [s.key, s]));
  const ours = arms.map((a) => ({ label: a.label, run: report.runs.find((r) => r.label === a.label)!, byPrompt: byPrompt(a.label) }));
  const key = (i: number) => `${items[i].id}#0`;
  // Whole requests on both sides (prefill included): transformers.js reports nothing finer.
  const rate = (s: RequestSample | undefined) => (s?.ok && s.e2eMs > 0 ? s.completionTokens / (s.e2eMs / 1000) : Number.NaN);
  const peerRates = new Map(peer.map((p, i) => [key(i), p.seconds > 0 ? p.tokens / p.seconds : Number.NaN]));

  const peerTokens = peer.reduce((n, p) => n + p.tokens, 0);
  const peerSeconds = peer.reduce((n, p) => n + p.seconds, 0);
  const peerTps = peerSeconds > 0 ? peerTokens / peerSeconds : 0;
  const identical = (arm: (typeof ours)[number]) => peer.filter((p, i) => arm.byPrompt.get(key(i))?.text.trim() === p.text.trim()).length;
  const peerReport: PeerReport = {
    engine: PEER,
    model_path: o.peerModel,
    prompts: items.length,
    max_tokens: o.maxTokens,
    runs: [
      { label: PEER, tokens_per_second: peerTps, generated_tokens: peerTokens, duration_s: peerSeconds },
      ...ours.map((a) => ({ label: `ours ${a.label}`, tokens_per_second: a.run.tokens_per_second, generated_tokens: a.run.generated_tokens, duration_s: a.run.duration_s })),
    ],
    ratios: Object.fromEntries(ours.map((a) => [`ours ${a.label} / ${PEER}`, peerTps > 0 ? a.run.tokens_per_second / peerTps : null])),
    paired: Object.fromEntries(
      ours.map((a) => [`ours ${a.label} / ${PEER}`, bootstrapRatio(perPromptRatios(peerRates, new Map(items.map((_, i) => [key(i), rate(a.byPrompt.get(key(i)))]))), { seed: o.seed })]),
    ),
    // Text, not ids: our server streams text. Identical greedy text on every prompt means identical tokens in practice.
    agreement: { compared: items.length, identical: Math.min(...ours.map(identical)), basis: 'text' },
  };
  return { ...report, kind: 'peer-transformers', peer: peerReport };
}
