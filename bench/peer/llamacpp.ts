/**
 * llama.cpp (node-llama-cpp, prebuilt CPU binary) vs our engine on the same GGUF and the same prompt token ids:
 * its plain greedy decoding and its prompt-lookup predictor against our lookahead off and on. Every prompt goes to
 * the four arms back to back, in an order rotated per prompt and round; ratios are paired per prompt (bench/paired.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { toEngineOptions } from '../../src/config/engine-options.js';
import { loadConfig } from '../../src/config/load.js';
import { collectJob, GREEDY } from '../../src/engine/collect.js';
import { createEngine } from '../../src/engine/index.js';
import type { Engine } from '../../src/engine/types.js';
import { loadTokenizer } from '../../src/model/load.js';
import type { ChatMessage } from '../../src/model/tokenizer/types.js';
import { BenchError } from '../errors.js';
import { bootstrapRatio, perPromptRatios, type PairedInterval } from '../paired.js';
import { lineChart } from '../report/svg.js';

export interface LlamaCppPeerOptions {
  /** The GGUF both engines load. */
  model: string;
  /** What our engine loads instead, when it cannot tokenize that GGUF (the same weights, e.g. the HF dir). */
  engineModel: string | null;
  /** Our weights' dtype (the GGUF's type is llama.cpp's); null = the server's default. */
  dtype: string | null;
  contextLength: number | null;
  /** Plain text (completion models) or chat messages rendered with the model's template. */
  prompts: PeerPrompt[];
  /** Instead of the prompts as they are: for each length, one prompt of exactly that many ids, the prompts' ids in turn, repeated. */
  promptTokens: number[] | null;
  maxTokens: number;
  rounds: number;
  threads: number;
  layout: 'hier' | 'par' | 'one';
  /** Seeds the bootstrap of the paired ratios. */
  seed: number;
  log: (line: string) => void;
}

export type PeerPrompt = { text: string } | { messages: ChatMessage[] };

export type ArmName = 'llama.cpp plain' | 'llama.cpp input-lookup' | 'ours off' | 'ours lookahead';

export interface ArmResult {
  arm: ArmName;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  /** Generated tokens per forward (ours) or per verified batch (llama.cpp: generated / (generated − validated drafts)). */
  tokensPerStep: number | null;
  drafted: number | null;
  accepted: number | null;
  /** Per prompt, the ids of the last round (for agreement). */
  ids: number[][];
  /** Per prompt, over all rounds: tokens / seconds. */
  perPrompt: number[];
  /** Per prompt, the median over rounds of the seconds to the first token (prefill). */
  firstTokenSeconds: number[];
  /** Tokens after the first over the seconds after it, all prompts and rounds. */
  decodeTokensPerSecond: number;
  /** The same per prompt: how decoding slows as the context grows. */
  decodePerPrompt: number[];
}

export interface LlamaCppPeerResult {
  model: string;
  engineModel: string;
  promptTokens: number[];
  maxTokens: number;
  rounds: number;
  threads: number;
  arms: ArmResult[];
  /** Prompts whose greedy ids equal llama.cpp plain's, per arm. */
  agreement: Record<ArmName, number>;
  /** Prompts where each speculating arm equals its own plain arm (lossless check). */
  lossless: { llamaCpp: number; ours: number };
  /** Per-prompt tokens/s ratios (geometric mean, bootstrap 95 % CI), keyed "arm / baseline". */
  paired: Record<string, PairedInterval | null>;
}

interface Tally {
  tokens: number;
  seconds: number;
  steps: number;
  drafted: number;
  accepted: number;
  ids: number[][];
  promptTokens: number[];
  promptSeconds: number[];
  /** Per prompt, each round's seconds to the first token. */
  firstToken: number[][];
  decodeTokens: number;
  decodeSeconds: number;
  promptDecodeTokens: number[];
  promptDecodeSeconds: number[];
}

/** What the paired ratios compare: each side's speculation against its own plain decoding, and the two plain engines. */
const PAIRS: [ArmName, ArmName][] = [
  ['ours lookahead', 'ours off'],
  ['llama.cpp input-lookup', 'llama.cpp plain'],
  ['ours off', 'llama.cpp plain'],
  ['ours lookahead', 'llama.cpp input-lookup'],
];

const ARMS: ArmName[] = ['llama.cpp plain', 'llama.cpp input-lookup', 'ours off', 'ours lookahead'];

export async function runLlamaCppPeer(o: LlamaCppPeerOptions): Promise<LlamaCppPeerResult> {
  let nlc: typeof import('node-llama-cpp');
  try {
    nlc = await import('node-llama-cpp');
  } catch (err) {
    throw new BenchError(`node-llama-cpp is not installed (a devDependency): ${(err as Error).message}`);
  }
  const engineModel = o.engineModel ?? o.model;
  const tokenizer = await loadTokenizer(engineModel);
  const encoded = o.prompts.map((p) =>
    'text' in p ? tokenizer.encode(p.text, { addSpecialTokens: true }) : tokenizer.encode(tokenizer.renderChat(p.messages), { addSpecialTokens: !tokenizer.chatTemplateAddsBos }),
  );
  const prompts = o.promptTokens === null ? encoded : o.promptTokens.map((n) => idsOfLength(encoded, n));
  const longest = Math.max(...prompts.map((p) => p.length));
  const contextLength = o.contextLength ?? longest + o.maxTokens + 64;

  const llama = await nlc.getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, logLevel: nlc.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: o.model, gpuLayers: 0 });
  const stopIds = new Set<number>([...tokenizer.eosTokenIds]);
  const tallies = new Map<ArmName, Tally>(
    ARMS.map((a) => [
      a,
      { tokens: 0, seconds: 0, steps: 0, drafted: 0, accepted: 0, ids: [], promptTokens: prompts.map(() => 0), promptSeconds: prompts.map(() => 0), firstToken: prompts.map(() => []), decodeTokens: 0, decodeSeconds: 0,
        promptDecodeTokens: prompts.map(() => 0), promptDecodeSeconds: prompts.map(() => 0) },
    ]),
  );
  const record = (arm: ArmName, p: number, ids: number[], seconds: number, steps: number, drafted: number, accepted: number, firstToken: number) => {
    const t = tallies.get(arm)!;
    t.firstToken[p].push(firstToken);
    t.decodeTokens += Math.max(0, ids.length - 1);
    t.decodeSeconds += seconds - firstToken;
    t.promptDecodeTokens[p] += Math.max(0, ids.length - 1);
    t.promptDecodeSeconds[p] += seconds - firstToken;
    t.tokens += ids.length;
    t.seconds += seconds;
    t.steps += steps;
    t.drafted += drafted;
    t.accepted += accepted;
    t.ids[p] = ids;
    t.promptTokens[p] += ids.length;
    t.promptSeconds[p] += seconds;
  };

  const llamaArm = async (arm: ArmName, p: number) => {
    const ids = prompts[p];
    // An fp32 KV cache like ours: with llama.cpp's default F16 cache its plain and lookup runs already
    // disagreed on a near-tie (stories260K, token 47 of one prompt).
    const context = await model.createContext({
      contextSize: contextLength, threads: o.threads, sequences: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
    });
    const predictor = arm === 'llama.cpp input-lookup' ? new nlc.InputLookupTokenPredictor() : undefined;
    // What LlamaCompletion does with its prompt: the predictor drafts from these input ids.
    predictor?.updateInputTokens(ids as never[]);
    const seq = context.getSequence({ tokenPredictor: predictor });
    const out: number[] = [];
    const started = performance.now();
    let first = 0;
    for await (const token of seq.evaluate(ids as never[], { temperature: 0 })) {
      first ||= performance.now();
      if (stopIds.has(token as number)) break;
      out.push(token as number);
      if (out.length >= o.maxTokens) break;
    }
    const seconds = (performance.now() - started) / 1000;
    const pr = seq.tokenPredictions;
    record(arm, p, out, seconds, out.length - Math.min(pr.validated, out.length - 1), pr.validated + pr.refuted, pr.validated, (first - started) / 1000);
    await context.dispose();
  };

  const oursArm = async (engine: Engine, arm: ArmName, p: number) => {
    const lookahead = arm === 'ours off' ? { ...engineOptions.lookahead, enabled: false } : { ...engineOptions.lookahead, enabled: true, layout: o.layout };
    const started = performance.now();
    const job = engine.submit(engine.models[0].id, {
      promptIds: prompts[p], maxTokens: o.maxTokens, stop: [], logprobs: null, lookahead,
      sampling: GREEDY,
      // Each arm its own tenant: the lookahead arm drafts from its own earlier answers, never from the off arm's.
      tenant: arm === 'ours off' ? 'bench-off' : 'bench-on',
    });
    const out: number[] = [];
    let first = 0;
    for await (const chunk of job) {
      first ||= performance.now();
      for (const id of chunk.tokens) out.push(id);
    }
    const result = await job.result;
    const seconds = (performance.now() - started) / 1000;
    // The stop token is not counted on the llama.cpp side either.
    record(arm, p, out.filter((id) => !stopIds.has(id)), seconds, result.lookahead.steps, result.lookahead.draftTokens, result.lookahead.acceptedTokens, (first - started) / 1000);
  };

  // No prefix cache: --prompt-tokens' prompts start with the same ids, and llama.cpp's arms start each from nothing.
  const argv = ['--model', engineModel, '--threads', String(o.threads), '--log-level', 'silent', '--cache-dir', buildCache(o), '--prefix-cache-mb', '0'];
  if (o.contextLength !== null) argv.push('--context-length', String(o.contextLength));
  if (o.dtype !== null) argv.push('--dtype', o.dtype);
  const engineOptions = toEngineOptions(loadConfig(argv, {}));
  try {
    for (let r = 0; r < o.rounds; r++) {
      // A fresh engine per round: its tries would otherwise remember the previous round's answers to the same prompts.
      const engine: Engine = await createEngine(engineOptions, () => {});
      try {
        for (let p = 0; p < prompts.length; p++) {
          // Rotated per prompt and round, so no arm always runs first (warm caches) or last (a tired shared machine).
          const order = ARMS.map((_, i) => ARMS[(i + p + r) % ARMS.length]);
          o.log(`round ${r + 1}/${o.rounds}, prompt ${p + 1}/${prompts.length}`);
          for (const arm of order) await (arm.startsWith('llama.cpp') ? llamaArm(arm, p) : oursArm(engine, arm, p));
        }
      } finally {
        await engine.close(1000);
      }
    }
  } finally {
    await model.dispose();
    await llama.dispose();
  }

  const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const agree = (arm: ArmName, reference: ArmName) => {
    const ref = tallies.get(reference)!.ids;
    return tallies.get(arm)!.ids.filter((ids, i) => same(ids, ref[i])).length;
  };
  return {
    model: o.model,
    engineModel,
    promptTokens: prompts.map((p) => p.length),
    maxTokens: o.maxTokens,
    rounds: o.rounds,
    threads: o.threads,
    arms: ARMS.map((arm) => {
      const t = tallies.get(arm)!;
      const predicts = arm !== 'ours off' && arm !== 'llama.cpp plain';
      return {
        arm,
        tokens: t.tokens,
        seconds: t.seconds,
        tokensPerSecond: t.seconds > 0 ? t.tokens / t.seconds : 0,
        tokensPerStep: predicts && t.steps > 0 ? t.tokens / t.steps : null,
        drafted: predicts ? t.drafted : null,
        accepted: predicts ? t.accepted : null,
        ids: t.ids,
        perPrompt: t.promptTokens.map((n, p) => (t.promptSeconds[p] > 0 ? n / t.promptSeconds[p] : 0)),
        firstTokenSeconds: t.firstToken.map(median),
        decodeTokensPerSecond: t.decodeSeconds > 0 ? t.decodeTokens / t.decodeSeconds : 0,
        decodePerPrompt: t.promptDecodeTokens.map((n, p) => (t.promptDecodeSeconds[p] > 0 ? n / t.promptDecodeSeconds[p] : 0)),
      };
    }),
    agreement: Object.fromEntries(ARMS.map((arm) => [arm, agree(arm, 'llama.cpp plain')])) as Record<ArmName, number>,
    lossless: { llamaCpp: agree('llama.cpp input-lookup', 'llama.cpp plain'), ours: agree('ours lookahead', 'ours off') },
    paired: Object.fromEntries(PAIRS.map(([arm, base]) => [`${arm} / ${base}`, bootstrapRatio(perPromptRatios(ratesOf(tallies.get(base)!), ratesOf(tallies.get(arm)!)), { seed: o.seed })])),
  };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[sorted.length >> 1];
}

/** Exactly `n` ids: the prompts' ids one after another, from the start again until there are enough (long RAG-like prompts). */
function idsOfLength(prompts: number[][], n: number): number[] {
  const pool = prompts.flat();
  if (pool.length === 0) throw new BenchError('--prompt-tokens needs prompts that encode to at least one token');
  return Array.from({ length: n }, (_, i) => pool[i % pool.length]);
}

function ratesOf(t: Tally): Map<string, number> {
  return new Map(t.promptTokens.map((n, p) => [String(p), t.promptSeconds[p] > 0 ? n / t.promptSeconds[p] : Number.NaN]));
}

/** Built graphs are kept between the runs of one bench invocation (the build is not what is measured). */
let sharedBuildCache: string | null = null;
function buildCache(o: LlamaCppPeerOptions): string {
  if (sharedBuildCache === null) {
    sharedBuildCache = mkdtempSync(join(tmpdir(), 'peer-llamacpp-build-'));
    process.once('exit', () => rmSync(sharedBuildCache!, { recursive: true, force: true }));
    o.log(`build cache ${sharedBuildCache}`);
  }
  return sharedBuildCache;
}

export function renderLlamaCppPeer(r: LlamaCppPeerResult): string {
  const fmt = (x: number | null, d = 1) => (x === null ? '–' : x.toFixed(d));
  const rows = r.arms.map(
    (a) =>
      `| ${a.arm} | ${a.tokens} | ${fmt(a.tokensPerSecond)} | ${a.firstTokenSeconds.map((x) => fmt(x, 2)).join(' / ')} | ${fmt(a.decodeTokensPerSecond)} | ${fmt(a.tokensPerStep, 2)} | ${a.drafted ?? '–'} | ${a.accepted ?? '–'} | ${r.agreement[a.arm]}/${r.promptTokens.length} |`,
  );
  return [
    `model ${r.model}${r.engineModel !== r.model ? ` (ours: ${r.engineModel})` : ''}; ${r.promptTokens.length} prompts of ${r.promptTokens.join('/')} tokens, ≤ ${r.maxTokens} new tokens, ${r.rounds} rounds, ${r.threads} thread(s)`,
    '',
    '| arm | tokens | tokens/s | first token s (per prompt, median) | decode tokens/s | tokens/step | drafted | accepted | greedy = llama.cpp plain |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `lossless: llama.cpp input-lookup = plain on ${r.lossless.llamaCpp}/${r.promptTokens.length} prompts, ours lookahead = off on ${r.lossless.ours}/${r.promptTokens.length}`,
    '',
    ...renderPlainPerPrompt(r),
    '',
    'tokens/s paired per prompt (geometric mean [95 % bootstrap CI]):',
    '',
    ...Object.entries(r.paired).map(([k, i]) => `- ${k}: ${i ? `${fmt(i.estimate, 2)} [${fmt(i.low, 2)}, ${fmt(i.high, 2)}]` : '–'}`),
  ].join('\n');
}

/** Plain decoding, ours against llama.cpp's, prompt by prompt: time to first token and decode speed, with ratios. */
function renderPlainPerPrompt(r: LlamaCppPeerResult): string[] {
  const arm = (name: ArmName) => r.arms.find((a) => a.arm === name)!;
  const [ours, theirs] = [arm('ours off'), arm('llama.cpp plain')];
  return [
    '| prompt tokens | time to first token, ours / llama.cpp | decode tok/s, ours / llama.cpp |',
    '|---:|---|---|',
    ...r.promptTokens.map((n, p) => {
      const [to, tl] = [ours.firstTokenSeconds[p], theirs.firstTokenSeconds[p]];
      const [d0, dl] = [ours.decodePerPrompt[p], theirs.decodePerPrompt[p]];
      return `| ${n} | ${to.toFixed(2)} / ${tl.toFixed(2)} s (×${(tl / to).toFixed(2)} faster) | ${d0.toFixed(1)} / ${dl.toFixed(1)} (×${(d0 / dl).toFixed(2)}) |`;
    }),
  ];
}

/** Decode speed of every arm against the prompt's length, one point per prompt (the SVG beside the JSON). */
export function decodeChart(r: LlamaCppPeerResult): string {
  return lineChart({
    title: `Decode speed against context length (${basename(r.engineModel)})`,
    xLabel: 'prompt tokens',
    yLabel: 'decode tok/s',
    logX: true,
    series: r.arms.map((a) => ({ name: a.arm, points: r.promptTokens.map((n, p): [number, number] => [n, a.decodePerPrompt[p]]) })),
  });
}
