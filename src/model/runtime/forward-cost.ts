import type { LoadedModel, Sequence } from '../types.js';

export interface ForwardCost {
  k: number;
  /** Median. */
  ms: number;
}

/** With the fastest run too: on a shared machine, other load only ever adds time, so the minimum is its floor. */
export interface ForwardCostSpread extends ForwardCost {
  minMs: number;
}

/**
 * Median wall time of one forward of k new tokens on top of `past` cached tokens, for each k.
 * Rounds interleave the ks so that machine noise hits all of them alike; the first rounds (JIT, ORT's first runs:
 * k = 1 measured ~0.75 ms there against ~0.5 ms in steady decoding) are discarded, and each timed forward follows an
 * untimed one of the same k.
 */
const WARMUP_ROUNDS = 4;

export async function measureForwardCost(model: LoadedModel, ks: number[], past: number, rounds: number): Promise<ForwardCost[]> {
  return (await measureForwardCosts(model, ks, past, rounds, ['ids'])).ids!.map(({ k, ms }) => ({ k, ms }));
}

/**
 * What a step brings back: 'ids' = the in-graph argmax (greedy decoding); 'logits' = S × vocab floats plus a JS
 * argmax scan of every row (sampling, and every greedy step before the graph had its argmax: the scan is
 * verification's upper bound, exact for k = 1).
 */
export type ForwardOutput = 'ids' | 'logits';

/** measureForwardCost for several outputs, interleaved within each round so that noise hits them alike. */
export async function measureForwardCosts(
  model: LoadedModel,
  ks: number[],
  past: number,
  rounds: number,
  outputs: ForwardOutput[],
): Promise<Partial<Record<ForwardOutput, ForwardCostSpread[]>>> {
  const maxK = Math.max(...ks);
  const pastLen = Math.max(0, Math.min(past, model.info.contextLength - maxK));
  const seq = model.newSequence();
  try {
    await prefill(seq, pastLen, model.info.vocabSize, 0);
    const inputs = stepInputs(ks, pastLen, model.info.vocabSize, 0);
    const vocab = model.info.vocabSize;
    const step = async (i: number, output: ForwardOutput) => {
      const input = { ...inputs[i], mask: null };
      if (output === 'ids') await seq.forwardIds(input);
      else {
        const logits = await seq.forward(input);
        for (let row = 0; row < ks[i]; row++) sink += argmaxRow(logits, row * vocab, vocab);
      }
      seq.truncate(pastLen);
    };
    const times = outputs.map(() => ks.map((): number[] => []));
    for (let r = 1 - WARMUP_ROUNDS; r <= Math.max(1, rounds); r++) {
      for (let i = 0; i < ks.length; i++) {
        for (let o = 0; o < outputs.length; o++) {
          // An untimed forward of the same k first: right after a wide forward (64 after 1 in the previous round) a
          // narrow one runs on cold caches and took twice its steady-state time, which made k = 1 look dearer than
          // k = 8 and sent the adaptive budget after drafts that could not pay off.
          await step(i, outputs[o]);
          const t0 = performance.now();
          await step(i, outputs[o]);
          if (r > 0) times[o][i].push(performance.now() - t0);
        }
      }
    }
    return Object.fromEntries(outputs.map((output, o) => [output, ks.map((k, i) => ({ k, ms: median(times[o][i]), minMs: Math.min(...times[o][i]) }))]));
  } finally {
    seq.dispose();
  }
}

/** The cost of one forwardBatch of b sequences × k new tokens against b forwards of one sequence each. */
export interface BatchCost {
  b: number;
  k: number;
  /** Medians, and the fastest runs (on a shared machine other load only adds time). */
  batchedMs: number;
  separateMs: number;
  batchedMinMs: number;
  separateMinMs: number;
}

/**
 * For each b and k: b sequences, each `past` tokens in, step k tokens (greedy ids) either in one forwardBatch or one
 * forward each. Rounds interleave the cases as measureForwardCosts does, each timed run after an untimed one.
 */
export async function measureBatchCost(model: LoadedModel, bs: number[], ks: number[], past: number, rounds: number): Promise<BatchCost[]> {
  const pastLen = Math.max(0, Math.min(past, model.info.contextLength - Math.max(...ks)));
  const vocab = model.info.vocabSize;
  const seqs = Array.from({ length: Math.max(...bs) }, () => model.newSequence());
  try {
    for (let i = 0; i < seqs.length; i++) await prefill(seqs[i], pastLen, vocab, i);
    const inputs = seqs.map((_, i) => stepInputs(ks, pastLen, vocab, i));
    const cases = bs.flatMap((b) => ks.map((k, ki) => ({ b, k, ki, batched: [] as number[], separate: [] as number[] })));
    const rewind = (b: number) => seqs.slice(0, b).forEach((s) => s.truncate(pastLen));
    const batched = async (b: number, ki: number) => {
      await model.forwardBatch(seqs.slice(0, b).map((seq, i) => ({ seq, input: { ...inputs[i][ki], mask: null }, output: 'ids' })));
      rewind(b);
    };
    const separate = async (b: number, ki: number) => {
      for (let i = 0; i < b; i++) await seqs[i].forwardIds({ ...inputs[i][ki], mask: null });
      rewind(b);
    };
    for (let r = 1 - WARMUP_ROUNDS; r <= Math.max(1, rounds); r++) {
      for (const c of cases) {
        for (const [run, times] of [[batched, c.batched], [separate, c.separate]] as const) {
          await run(c.b, c.ki);
          const t0 = performance.now();
          await run(c.b, c.ki);
          if (r > 0) times.push(performance.now() - t0);
        }
      }
    }
    return cases.map((c) => ({
      b: c.b,
      k: c.k,
      batchedMs: median(c.batched),
      separateMs: median(c.separate),
      batchedMinMs: Math.min(...c.batched),
      separateMinMs: Math.min(...c.separate),
    }));
  } finally {
    for (const s of seqs) s.dispose();
  }
}

/** Deterministic tokens, different per sequence `variant`. */
function token(i: number, variant: number, vocab: number): number {
  return (i * 7919 + 13 + variant * 104729) % vocab;
}

async function prefill(seq: Sequence, length: number, vocab: number, variant: number): Promise<void> {
  const chunk = 256;
  for (let at = 0; at < length; at += chunk) {
    const n = Math.min(chunk, length - at);
    await seq.forward({ tokens: Int32Array.from({ length: n }, (_, i) => token(at + i, variant, vocab)), positions: Int32Array.from({ length: n }, (_, i) => at + i), mask: null });
  }
}

function stepInputs(ks: number[], past: number, vocab: number, variant: number): { tokens: Int32Array; positions: Int32Array }[] {
  return ks.map((k) => ({
    tokens: Int32Array.from({ length: k }, (_, i) => token(past + i, variant, vocab)),
    positions: Int32Array.from({ length: k }, (_, i) => past + i),
  }));
}

/** Keeps the scans from being optimized away. */
let sink = 0;

function argmaxRow(logits: Float32Array, start: number, n: number): number {
  let best = start;
  for (let i = start + 1; i < start + n; i++) if (logits[i] > logits[best]) best = i;
  return best - start;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
