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
  RECYCLED_K,
  firstPromptRowRecycled,
  RecycledTable,
  RequestScope,
  sourceShares,
  topIds,
  type CostPoint,
  type DraftLayout,
} from '../src/lookahead/index.js';
import { loadModel } from '../src/model/load.js';
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
 *
 * The recycled source (the model's top-k successors of each token, from every row a forward computed) needs what
 * the model ranked at each position: one teacher-forced forward over prompt + answer per item records the top
 * RECYCLED_K ids of every row (cached with the answers). A replayed step feeds the table with the rows on its
 * accepted path only (a live step also feeds the rejected nodes' rows, whose context the replay does not know), and
 * the prefill with the prompt rows the engine learns from (firstPromptRowRecycled).
 */

/** A prompt and its greedy answer, as token ids (the answer as committed: an EOS ends it). */
export interface Exchange {
  id: string;
  prompt: number[];
  prediction?: number[];
  answer: number[];
  /**
   * The model's top RECYCLED_K ids after each position of prompt + answer, row-major: row p ranks what follows
   * (prompt + answer)[0..p] (teacher-forced, so row p's first id is token p + 1 wherever the answer goes on).
   */
  next?: number[];
}

export interface ReplayCorpus {
  workload: string;
  eosIds: number[];
  vocabSize?: number;
  /** The model's ModelInfo.headShare: whether the engine learns from every prompt row or from the tail only. */
  headShare?: number;
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
  if (existsSync(path)) {
    const cached = JSON.parse(readFileSync(path, 'utf8')) as ReplayCorpus;
    if (cached.vocabSize !== undefined && cached.headShare !== undefined && [...cached.warm, ...cached.held].every((x) => x.next)) return cached;
    await rankedNext(cached, opts.model, log);
    writeFileSync(path, JSON.stringify(cached));
    return cached;
  }
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
  await rankedNext(corpus, opts.model, log);
  mkdirSync(opts.cacheDir, { recursive: true });
  writeFileSync(path, JSON.stringify(corpus));
  return corpus;
}

/** Fills each exchange's `next` (see Exchange) with one forward over its prompt and answer, logits for every row. */
async function rankedNext(corpus: ReplayCorpus, modelPath: string | null, log: (line: string) => void): Promise<void> {
  const engine = toEngineOptions(loadConfig([...(modelPath ? ['--model', modelPath] : []), '--log-level', 'silent']));
  const model = await loadModel(engine, () => {});
  const vocab = model.info.vocabSize;
  corpus.vocabSize = vocab;
  corpus.headShare = model.info.headShare ?? 1;
  let disagree = 0;
  let rows = 0;
  try {
    for (const x of [...corpus.warm, ...corpus.held]) {
      const ids = Int32Array.from([...x.prompt, ...x.answer]);
      const seq = model.newSequence();
      const next = new Int32Array(ids.length * RECYCLED_K);
      // Chunks keep the logits of one forward small (rows × vocab floats).
      for (let at = 0; at < ids.length; at += 256) {
        const tokens = ids.subarray(at, Math.min(ids.length, at + 256));
        const positions = Int32Array.from(tokens, (_, i) => at + i);
        const logits = await seq.forward({ tokens, positions, mask: null });
        for (let r = 0; r < tokens.length; r++) topIds(logits, next, (at + r) * RECYCLED_K, RECYCLED_K, r * vocab, vocab);
      }
      seq.dispose();
      for (let i = 0; i + 1 < x.answer.length; i++, rows++) if (next[(x.prompt.length + i) * RECYCLED_K] !== x.answer[i + 1]) disagree++;
      x.next = Array.from(next);
    }
  } finally {
    await model.dispose();
  }
  log(`${corpus.workload}: model top-${RECYCLED_K} recorded; teacher-forced argmax differs from the greedy answer at ${disagree} of ${rows} rows`);
}

export interface ReplayVariant {
  decodingLength: number;
  branchLength: number;
  layout: DraftLayout;
  /** 'adaptive' = the BudgetController; a number = that size every step. */
  sizing: 'adaptive' | number;
  cost: CostPoint[];
  /** Draft from the model's recycled top-k too (needs the corpus's `next`). */
  recycled: boolean;
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
  /** Accepted draft tokens by the ORIGIN_* bits of the sources that proposed them. */
  byOrigin: number[];
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
  const result: ReplayResult = { steps: 0, tokens: 0, nodes: 0, accepted: 0, expected: 0, costMs: 0, plainMs: 0, sizes: {}, byOrigin: new Array<number>(16).fill(0) };
  // The warm-up items are served like the others (they feed the scopes and teach the budget) but not counted.
  const warm: ReplayResult = { ...result, sizes: {}, byOrigin: [...result.byOrigin] };
  const recycled = variant.recycled ? new RecycledTable(corpus.vocabSize ?? 1 << 15) : null;
  let tags = 0;
  for (const x of [...corpus.warm, ...corpus.held]) {
    const into = corpus.warm.includes(x) ? warm : result;
    if (x.answer.length === 0) continue;
    const ranked = x.next;
    const tag = ++tags;
    const at = (p: number): number => (p < 0 ? -1 : p < x.prompt.length ? x.prompt[p] : x.answer[p - x.prompt.length]);
    // The rows at context positions [from, to) went through a forward: the table learns what the model ranked there.
    const recycle = (from: number, to: number): void => {
      if (!recycled || !ranked) return;
      for (let p = from; p < to; p++) recycled.record(at(p), ranked, p * RECYCLED_K, RECYCLED_K, at(p - 1), at(p - 2), tag);
    };
    recycle(firstPromptRowRecycled(x.prompt.length, corpus.headShare), x.prompt.length);
    const scope = new RequestScope(settings, x.prompt, x.prediction);
    const proposer = new Proposer({ request: scope.trie, global, copies: [scope.copy, globalCopy], recycled, tag }, variant.decodingLength, acceptance);
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
      recycle(length - 1, length + accepted);
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
    for (let o = 0; o < 16; o++) into.byOrigin[o] += proposer.acceptedByOrigin[o];
  }
  return result;
}

/** Forward ms of a replay's steps on another cost curve (its sizes as chosen), and the speed-up that gives. */
export function speedupOn(r: ReplayResult, cost: CostPoint[]): number {
  const curve = new CostCurve(cost);
  let ms = 0;
  for (const [size, steps] of Object.entries(r.sizes)) ms += steps * curve.cost(Number(size));
  return (r.tokens * curve.cost(1)) / Math.max(1e-9, ms);
}

/** A GPU's forward: 64 tokens cost about what one does (`--flat-cost`'s default). */
export const FLAT_COST: CostPoint[] = [
  { k: 1, ms: 1 },
  { k: 64, ms: 1.1 },
];

export function renderReplay(rows: { workload: string; variant: string; r: ReplayResult }[], command: string, flat: CostPoint[] = FLAT_COST): string {
  const lines = [
    '# Draft replay (greedy answers known; acceptance exact, forward cost from the cost curve)',
    '',
    `\`${command}\``,
    '',
    'est. speed-up: on the cost curve the sizes were chosen by; flat: the same steps on the flat curve (a GPU). Accepted by source: draft tokens each source proposed (only it).',
    '',
    '| workload | variant | steps | tokens/step | draft nodes/step | accepted/node | expected/accepted | est. speed-up | flat | accepted by source | sizes (size: steps) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const { workload, variant, r } of rows) {
    const sizes = Object.entries(r.sizes)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    const sources = sourceShares(r.byOrigin)
      .filter((o) => o.proposed > 0)
      .map((o) => `${o.source} ${o.proposed} (${o.only})`)
      .join(', ');
    lines.push(
      `| ${workload} | ${variant} | ${r.steps} | ${(r.tokens / Math.max(1, r.steps)).toFixed(2)} | ${(r.nodes / Math.max(1, r.steps)).toFixed(1)} | ${(r.accepted / Math.max(1, r.nodes)).toFixed(3)} | ${(r.expected / Math.max(1, r.accepted)).toFixed(2)} | ×${(r.plainMs / Math.max(1e-9, r.costMs)).toFixed(2)} | ×${speedupOn(r, flat).toFixed(2)} | ${sources} | ${sizes} |`,
    );
  }
  return lines.join('\n');
}

/** `--cost 1:16.6,8:29.7,...` → points. */
export function parseCost(spec: string | undefined, fallback = WIDE_MODEL_COST): CostPoint[] {
  if (!spec) return fallback;
  const points = spec.split(',').map((p) => {
    const [k, ms] = p.split(':').map(Number);
    if (!(k >= 1) || !(ms > 0)) throw new BenchError(`--cost: "${p}" is not k:ms`, 2);
    return { k, ms };
  });
  return points;
}
