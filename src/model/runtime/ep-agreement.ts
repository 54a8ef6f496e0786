import type { LoadedModel, Sequence } from '../types.js';
import { fillCausalBias } from './mask.js';

/**
 * How close a model's forwards on one EP are to the same weights' forwards on another (the CPU EP), at the forward
 * sizes a GPU kernel may take other paths for: prompts of many lengths in one forward and in chunks, and draft trees
 * over pasts of several lengths. The WebGPU tests and `bench device-check` run it; DESIGN.md §3a says why.
 * Prompts are prefixes of one token stream, so one causal forward of the longest on the reference gives every
 * prompt's rows (the CPU graph's rows do not depend on how a forward is cut).
 */
export const PROMPT_LENGTHS = [1, 16, 31, 32, 33, 64, 128, 512, 2048];
export const TREE_NODES = [16, 32, 64];
export const TREE_PASTS = [0, 100, 1000];
/** Chunked prefill: chunks of more than 32 rows over a past, and a shorter last one, as the engine's long prefills run. */
export const PREFILL_CHUNK = 100;

export interface Agreement {
  /** Max |Δ logprob| over every row of the forward(s) and the whole vocabulary. */
  maxLogprobDelta: number;
  /** The last row's argmax equals the reference's, or the two are within `tieTolerance` in the reference's logprobs. */
  top1Equal: boolean;
}

export interface PromptAgreement extends Agreement {
  length: number;
  /** Null: one forward; else the prefill chunk size. */
  chunk: number | null;
}

export interface TreeAgreement extends Agreement {
  nodes: number;
  past: number;
}

/** A candidate a tie away from the reference's choice is no disagreement: at 1e-3 either is a correct answer. */
const TIE_TOLERANCE = 1e-3;

/** The token stream every prompt is a prefix of: deterministic, spread over the vocabulary. */
export function sweepTokens(length: number, vocab: number): Int32Array {
  return Int32Array.from({ length }, (_, i) => (i * 7919 + 13) % vocab);
}

/**
 * Prompts of `lengths` (those within both models' context) on `model`, each in one forward and in PREFILL_CHUNK-token
 * chunks, against one forward of the longest on `reference`.
 */
export async function promptAgreement(model: LoadedModel, reference: LoadedModel, lengths: readonly number[] = PROMPT_LENGTHS): Promise<PromptAgreement[]> {
  const vocab = model.info.vocabSize;
  const fit = lengths.filter((l) => l <= Math.min(model.info.contextLength, reference.info.contextLength));
  if (fit.length === 0) return [];
  const tokens = sweepTokens(Math.max(...fit), vocab);
  const expected = await runOnce(reference, (seq) => chunked(seq, tokens, tokens.length));
  const out: PromptAgreement[] = [];
  for (const chunk of [null, PREFILL_CHUNK]) {
    // A prompt no longer than a chunk is prefilled in one forward either way.
    for (const length of fit.filter((l) => chunk === null || l > chunk)) {
      const prompt = tokens.subarray(0, length);
      const rows = await runOnce(model, (seq) => chunked(seq, prompt, chunk ?? length));
      out.push({ length, chunk, ...compare(rows, expected.subarray(0, length * vocab), vocab) });
    }
  }
  return out;
}

/**
 * Random draft trees of `nodes` on pasts of `pasts` tokens (those that fit), every row on `model` against `reference`.
 * Each past is prefilled once per model; the trees are trimmed off after each forward.
 */
export async function treeAgreement(
  model: LoadedModel,
  reference: LoadedModel,
  nodes: readonly number[] = TREE_NODES,
  pasts: readonly number[] = TREE_PASTS,
): Promise<TreeAgreement[]> {
  const vocab = model.info.vocabSize;
  const context = Math.min(model.info.contextLength, reference.info.contextLength);
  const out: TreeAgreement[] = [];
  for (const past of pasts.filter((p) => p + Math.max(...nodes) <= context)) {
    const [a, b] = [model.newSequence(), reference.newSequence()];
    try {
      const prefix = sweepTokens(past, vocab);
      for (const seq of [a, b]) if (past > 0) await chunked(seq, prefix, past);
      for (const n of nodes) {
        const input = randomTree(n, past, vocab, past * 31 + n);
        const [x, y] = [await a.forward(input), await b.forward(input)];
        out.push({ nodes: n, past, ...compare(x, y, vocab) });
        a.truncate(past);
        b.truncate(past);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  }
  return out;
}

/** A tree of n nodes: node 0 the root, every other under a random earlier node; positions by depth after `past`. */
function randomTree(n: number, past: number, vocab: number, seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const parent = Int32Array.from({ length: n }, (_, i) => (i === 0 ? -1 : Math.floor(next() * i)));
  const depth = new Int32Array(n);
  for (let i = 1; i < n; i++) depth[i] = depth[parent[i]] + 1;
  const t = past + n;
  const mask = new Float32Array(n * t).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    mask.fill(0, i * t, i * t + past);
    for (let j = i; j >= 0; j = parent[j]) mask[i * t + past + j] = 0;
  }
  return {
    tokens: Int32Array.from({ length: n }, () => Math.floor(next() * vocab)),
    positions: Int32Array.from(depth, (d) => past + d),
    mask,
  };
}

/** The logits of every row of `tokens` fed in `chunk`-token forwards, as one array. */
async function chunked(seq: Sequence, tokens: Int32Array, chunk: number): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (let start = 0; start < tokens.length; start += chunk) {
    const part = tokens.subarray(start, Math.min(tokens.length, start + chunk));
    const positions = Int32Array.from(part, (_, i) => start + i);
    const mask = fillCausalBias(new Float32Array(part.length * (start + part.length)), start, part.length);
    // A copy: a sequence's logits are valid until its next forward.
    parts.push((await seq.forward({ tokens: part, positions, mask })).slice());
  }
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    all.set(p, offset);
    offset += p.length;
  }
  return all;
}

async function runOnce<T>(model: LoadedModel, use: (seq: Sequence) => Promise<T>): Promise<T> {
  const seq = model.newSequence();
  try {
    return await use(seq);
  } finally {
    seq.dispose();
  }
}

function compare(actual: Float32Array, expected: Float32Array, vocab: number): Agreement {
  let maxLogprobDelta = 0;
  const rows = expected.length / vocab;
  for (let r = 0; r < rows; r++) {
    const [a, e] = [actual.subarray(r * vocab, (r + 1) * vocab), expected.subarray(r * vocab, (r + 1) * vocab)];
    const [la, le] = [logSumExp(a), logSumExp(e)];
    for (let i = 0; i < vocab; i++) maxLogprobDelta = Math.max(maxLogprobDelta, Math.abs(a[i] - la - (e[i] - le)));
  }
  const last = (x: Float32Array) => x.subarray((rows - 1) * vocab, rows * vocab);
  const [a, e] = [last(actual), last(expected)];
  return { maxLogprobDelta, top1Equal: e[argmax(e)] - e[argmax(a)] <= TIE_TOLERANCE };
}

function logSumExp(x: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i] - max);
  return max + Math.log(sum);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
