import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { collectJob, GREEDY } from '../src/engine/collect.js';
import { createEngine } from '../src/engine/index.js';
import {
  acceptedDepth,
  AcceptanceModel,
  BudgetController,
  CostCurve,
  GlobalTries,
  JobBudget,
  Proposer,
  RequestScope,
  type CostPoint,
  type DraftLayout,
} from '../src/lookahead/index.js';
import { BenchError } from './errors.js';
import { loadWorkload, splitWarmup } from './workload.js';

/**
 * Offline replay of drafting against known greedy answers. Lookahead is lossless, so with greedy decoding the
 * accepted path of a step is fully determined by the answer: the longest draft path that spells the answer's next
 * tokens. The harness therefore needs the model only once, to get the greedy answers (cached on disk); every
 * proposer and sizing variant is then measured in milliseconds, without forwards and without the noise of a shared
 * machine. The forward cost of a draft comes from a cost curve (by default the 150M-cost model's, README), which
 * turns tokens per step and nodes per step into the speed-up they would give.
 *
 * Protocol, as `bench ab --warmup N`: the first N items' answers go to the global trie and copy index first, then
 * each held-out item is replayed in turn, its answer added to the global scopes when it ends (one client).
 */

/** A prompt and its greedy answer, as token ids (the answer as committed: an EOS ends it). */
export interface Exchange {
  id: string;
  prompt: number[];
  prediction?: number[];
  answer: number[];
}

export interface ReplayCorpus {
  workload: string;
  eosIds: number[];
  maxTokens: number;
  warm: Exchange[];
  held: Exchange[];
}

/** Forward ms for k = 1, 2, 4, ..., 64 new tokens at past 256: the 150M-cost model, fp32, 2 cores (README). */
export const WIDE_MODEL_COST: CostPoint[] = [
  { k: 1, ms: 16.6 },
  { k: 2, ms: 19.6 },
  { k: 4, ms: 23.7 },
  { k: 8, ms: 29.7 },
  { k: 16, ms: 44.8 },
  { k: 32, ms: 73.7 },
  { k: 64, ms: 134 },
];

export interface CorpusOptions {
  model: string | null;
  workload: string;
  warmup: number;
  requests: number;
  maxTokens: number;
  /** spec-bench categories to keep (empty = all). */
  categories: string[];
  /** Directory of cached answers (one JSON per workload, model and length). */
  cacheDir: string;
}

/** Greedy answers (lookahead off) for the warm-up and held-out items of a workload, from the cache when present. */
export async function greedyCorpus(opts: CorpusOptions, log: (line: string) => void): Promise<ReplayCorpus> {
  const key = `${(opts.model ?? 'default').replace(/[^A-Za-z0-9]+/g, '_')}-${opts.workload.replace(/[^A-Za-z0-9]+/g, '_')}-${opts.categories.join('_')}-${opts.warmup}-${opts.requests}-${opts.maxTokens}.json`;
  const path = join(opts.cacheDir, key);
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as ReplayCorpus;
  const items = loadWorkload(opts.workload, { shape: 'plain', categories: opts.categories, repeat: 1 });
  const { warmup, measured } = splitWarmup(items, opts.warmup);
  const held = measured.slice(0, opts.requests);
  const config = loadConfig([...(opts.model ? ['--model', opts.model] : []), '--log-level', 'silent']);
  const engine = await createEngine(toEngineOptions(config), () => {});
  const corpus: ReplayCorpus = { workload: opts.workload, eosIds: [], maxTokens: opts.maxTokens, warm: [], held: [] };
  try {
    const modelId = engine.models[0].id;
    const tok = engine.tokenizer(modelId);
    corpus.eosIds = [...tok.eosTokenIds];
    for (const [set, out] of [
      [warmup, corpus.warm],
      [held, corpus.held],
    ] as const) {
      for (const item of set) {
        const prompt = tok.encode(tok.renderChat(item.messages), { addSpecialTokens: !tok.chatTemplateAddsBos });
        const prediction = item.prediction ? tok.encode(item.prediction, { addSpecialTokens: false }) : undefined;
        const job = engine.submit(modelId, {
          promptIds: prompt,
          maxTokens: opts.maxTokens,
          sampling: GREEDY,
          stop: [],
          logprobs: null,
          lookahead: { enabled: false, decodingLength: 1, branchLength: 1, layout: 'hier' },
          tenant: 'draft-replay',
        });
        const answer = (await collectJob(job)).ids;
        out.push({ id: item.id, prompt, ...(prediction ? { prediction } : {}), answer });
      }
      log(`${opts.workload}: ${out.length} greedy answers`);
    }
  } finally {
    await engine.close(1000);
  }
  mkdirSync(opts.cacheDir, { recursive: true });
  writeFileSync(path, JSON.stringify(corpus));
  return corpus;
}

export interface ReplayVariant {
  decodingLength: number;
  branchLength: number;
  layout: DraftLayout;
  /** 'adaptive' = the BudgetController; a number = that size every step. */
  sizing: 'adaptive' | number;
  cost: CostPoint[];
}

export interface ReplayResult {
  steps: number;
  /** Decode tokens: each answer's tokens after the first (that one comes from the prefill). */
  tokens: number;
  /** Draft nodes fed to forwards, roots excluded. */
  nodes: number;
  accepted: number;
  /** Σ of the proposer's expected accepted tokens for the drafts it sent (calibration: compare with `accepted`). */
  expected: number;
  /** Σ forward cost of the replayed steps and of plain decoding, in ms of the cost curve. */
  costMs: number;
  plainMs: number;
  /** Steps per chosen size (root included). */
  sizes: Record<number, number>;
}

/**
 * Replays the held-out items of `corpus` under `variant` (see the file comment), after `documents` (token ids, one
 * array each) went into the global scopes as posted documents go.
 */
export function replayDrafts(corpus: ReplayCorpus, variant: ReplayVariant, documents: readonly Int32Array[] = []): ReplayResult {
  const gramLength = variant.branchLength + 1;
  const settings = { gramLength, eosIds: corpus.eosIds };
  const globals = new GlobalTries({ ...settings, maxNodes: 2_000_000 });
  for (const ids of documents) globals.addDocumentSpan('t', ids, 0, ids.length, true);
  const global = globals.get('t');
  const globalCopy = globals.copyIndex('t');
  const truth = new CostCurve(variant.cost);
  const budget =
    variant.sizing === 'adaptive'
      ? new BudgetController(new CostCurve(variant.cost), { decodingLength: variant.decodingLength })
      : null;
  const acceptance = new AcceptanceModel();
  const result: ReplayResult = { steps: 0, tokens: 0, nodes: 0, accepted: 0, expected: 0, costMs: 0, plainMs: 0, sizes: {} };
  // The warm-up items are served like the others (they feed the scopes and teach the budget) but not counted.
  const warm: ReplayResult = { ...result, sizes: {} };
  for (const x of [...corpus.warm, ...corpus.held]) {
    const into = corpus.warm.includes(x) ? warm : result;
    if (x.answer.length === 0) continue;
    const scope = new RequestScope(settings, x.prompt, x.prediction);
    const proposer = new Proposer({ request: scope.trie, global, copies: [scope.copy, globalCopy] }, variant.decodingLength, acceptance);
    const sizer = budget ? new JobBudget(() => budget, proposer) : null;
    const context = new Int32Array(x.prompt.length + x.answer.length + 1);
    context.set(x.prompt);
    let length = x.prompt.length;
    const commit = (n: number, from: number): void => {
      for (let i = 0; i < n; i++) context[length++] = x.answer[from + i];
      proposer.accepted(context.subarray(length - n, length));
      scope.pushOutput(context.subarray(length - n, length));
    };
    commit(1, 0);
    let generated = 1;
    while (generated < x.answer.length) {
      const remaining = corpus.maxTokens - generated;
      if (sizer) sizer.prepare(context, length, variant.decodingLength, variant.branchLength, variant.layout === 'one');
      else proposer.prepare(context, length, variant.decodingLength, variant.branchLength, variant.layout === 'one');
      const asked = sizer ? sizer.next(0) : (variant.sizing as number);
      const size = Math.min(asked, remaining);
      const draft = size > 1 ? proposer.propose(context, { decodingLength: size, branchLength: Math.min(variant.branchLength, remaining - 1), layout: variant.layout }, false, length) : null;
      const s = draft ? draft.size : 1;
      const accepted = draft ? acceptedDepth(draft, x.answer, generated) : 0;
      const ms = truth.cost(s);
      sizer?.observe(s, accepted, ms, s);
      const n = Math.min(accepted + 1, x.answer.length - generated);
      commit(n, generated);
      generated += n;
      into.steps++;
      into.tokens += n;
      into.nodes += s - 1;
      into.accepted += accepted;
      into.expected += proposer.gains[s];
      into.costMs += ms;
      into.plainMs += n * truth.cost(1);
      into.sizes[s] = (into.sizes[s] ?? 0) + 1;
    }
    scope.finish(x.answer, null, global, globalCopy);
  }
  return result;
}

export function renderReplay(rows: { workload: string; variant: string; r: ReplayResult }[], command: string): string {
  const lines = [
    '# Draft replay (greedy answers known; acceptance exact, forward cost from the cost curve)',
    '',
    `\`${command}\``,
    '',
    '| workload | variant | steps | tokens/step | draft nodes/step | accepted/node | expected/accepted | est. speed-up | sizes (size: steps) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const { workload, variant, r } of rows) {
    const sizes = Object.entries(r.sizes)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    lines.push(
      `| ${workload} | ${variant} | ${r.steps} | ${(r.tokens / Math.max(1, r.steps)).toFixed(2)} | ${(r.nodes / Math.max(1, r.steps)).toFixed(1)} | ${(r.accepted / Math.max(1, r.nodes)).toFixed(3)} | ${(r.expected / Math.max(1, r.accepted)).toFixed(2)} | ×${(r.plainMs / Math.max(1e-9, r.costMs)).toFixed(2)} | ${sizes} |`,
    );
  }
  return lines.join('\n');
}

/** `--cost 1:16.6,8:29.7,...` → points. */
export function parseCost(spec: string | undefined): CostPoint[] {
  if (!spec) return WIDE_MODEL_COST;
  const points = spec.split(',').map((p) => {
    const [k, ms] = p.split(':').map(Number);
    if (!(k >= 1) || !(ms > 0)) throw new BenchError(`--cost: "${p}" is not k:ms`, 2);
    return { k, ms };
  });
  return points;
}
