/**
 * How closely quantized weights follow fp32 greedy decoding, ours beside llama.cpp's on the same weights.
 * The reference is always OUR fp32 greedy output (prompt ids identical for every arm). Two measures per arm:
 * - free-running: greedy to maxTokens (or EOS) from the prompt; prompts whose whole continuation equals the
 *   reference, and the mean share of the reference generated before the first differing token;
 * - teacher-forced: fed the reference continuation, the share of its positions where the arm's argmax is the
 *   reference token (each position conditioned on the fp32 prefix, so one early flip does not end the count).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { ensureBuilt } from '../src/model/builder/cache.js';
import { nbitsSettings, type NBitsOptions, type WeightDType } from '../src/model/builder/options.js';
import { dequantizeNBits, quantizeNBits } from '../src/model/builder/quantize.js';
import type { WeightSource } from '../src/model/builder/source.js';
import { dequantize } from '../src/model/builder/sources/gguf/ggml-types.js';
import { openHfDir } from '../src/model/builder/sources/hf-dir.js';
import { treeBuildOptions } from '../src/model/load.js';
import { openBuiltModel } from '../src/model/runtime/built-model.js';
import type { LoadedModel } from '../src/model/types.js';
import { GGUF_QUANTIZERS, ggufTypeFits, type GgufWeightType } from '../test/unit/gguf-model-writer.js';
import { BenchError } from './errors.js';
import { linearColumns, writeGgufFromHf } from './write-gguf.js';

export interface OursArm {
  name: string;
  dtype: WeightDType;
  nbits?: NBitsOptions;
}

export const OURS_ARMS: OursArm[] = [
  { name: 'ours q8 (symmetric, block 32)', dtype: 'q8' },
  { name: 'ours q4 symmetric (block 32, before)', dtype: 'q4', nbits: { zeroPoints: false } },
  { name: 'ours q4 zero points (block 32, default)', dtype: 'q4' },
  { name: 'ours q4 zero points, block 16', dtype: 'q4', nbits: { blockSize: 16 } },
];

export const LLAMACPP_TYPES: GgufWeightType[] = ['F32', 'Q8_0', 'Q4_0', 'Q4_K'];

export interface AgreementOptions {
  /** HF Llama directory: what we build and what write-gguf converts. */
  model: string;
  /** Prompt token ids (chat rendered by our tokenizer), shared by every arm. */
  prompts: number[][];
  maxTokens: number;
  threads: number;
  /** Skip the llama.cpp arms (node-llama-cpp absent or not wanted). */
  llamaCpp: boolean;
  log: (line: string) => void;
}

export interface ArmAgreement {
  arm: string;
  prompts: number;
  /** Prompts whose free-running continuation equals the reference. */
  identical: number;
  /** Mean over prompts of (tokens before the first difference) / (reference length). */
  prefixShare: number;
  /** Reference positions where the teacher-forced argmax is the reference token, over all positions. */
  teacherForced: number;
  /** RMS of (decoded − fp32) / RMS of fp32 over the quantized matrices; null for F32. */
  weightError: number | null;
}

export interface AgreementResult {
  model: string;
  maxTokens: number;
  promptTokens: { min: number; max: number; mean: number };
  reference: string;
  arms: ArmAgreement[];
  /** Arms that could not run on this model, and why. */
  skipped: string[];
}

interface Continuations {
  free: number[][];
  /** Per prompt, the argmax at each reference position given the reference prefix. */
  forced: number[][];
}

export async function runQuantAgreement(o: AgreementOptions): Promise<AgreementResult> {
  const source = openHfDir(o.model);
  // The server's cache directory, so builds are shared with it and with forward-cost.
  const cacheDir = join(toEngineOptions(loadConfig(['--log-level', 'silent'])).cacheDir, 'models');
  const stop = new Set(source.config.eosTokenIds);
  const build = async (arm: { dtype: WeightDType; nbits?: NBitsOptions }) =>
    openBuiltModel(await ensureBuilt(source, { ...treeBuildOptions('cpu', arm.dtype), nbits: arm.nbits }, cacheDir, o.log), { threads: o.threads });

  o.log('ours fp32 (reference)');
  const fp32 = await build({ dtype: 'fp32' });
  let reference: number[][];
  try {
    reference = [];
    for (const ids of o.prompts) reference.push(await greedy(fp32, ids, o.maxTokens, stop));
  } finally {
    await fp32.dispose();
  }

  const arms: ArmAgreement[] = [];
  for (const arm of OURS_ARMS) {
    o.log(arm.name);
    const model = await build(arm);
    try {
      const c: Continuations = { free: [], forced: [] };
      for (const [p, ids] of o.prompts.entries()) {
        c.free.push(await greedy(model, ids, o.maxTokens, stop));
        c.forced.push(await teacherForced(model, ids, reference[p]));
      }
      arms.push({ ...score(arm.name, reference, c, stop), weightError: weightError(source, oursReconstruct(arm)) });
    } finally {
      await model.dispose();
    }
  }
  const skipped: string[] = [];
  if (o.llamaCpp) arms.push(...(await llamaCppArms(o, source, reference, stop, skipped)));
  const lengths = o.prompts.map((p) => p.length);
  return {
    model: o.model,
    maxTokens: o.maxTokens,
    promptTokens: { min: Math.min(...lengths), max: Math.max(...lengths), mean: lengths.reduce((a, b) => a + b, 0) / lengths.length },
    reference: 'ours fp32 greedy (tree graph, exact attention, CPU EP)',
    arms,
    skipped,
  };
}

async function greedy(model: LoadedModel, prompt: number[], maxTokens: number, stop: Set<number>): Promise<number[]> {
  const seq = model.newSequence();
  try {
    const out: number[] = [];
    let next = (await seq.forwardIds({ tokens: Int32Array.from(prompt), positions: positionsFrom(0, prompt.length), mask: null })).at(-1)!;
    while (true) {
      out.push(next);
      if (stop.has(next) || out.length >= maxTokens) return out;
      next = (await seq.forwardIds({ tokens: Int32Array.of(next), positions: Int32Array.of(seq.length), mask: null }))[0];
    }
  } finally {
    seq.dispose();
  }
}

/** One causal forward over prompt + reference: row i of the continuation predicts reference[i]. */
async function teacherForced(model: LoadedModel, prompt: number[], reference: number[]): Promise<number[]> {
  const seq = model.newSequence();
  try {
    const tokens = [...prompt, ...reference.slice(0, -1)];
    const ids = await seq.forwardIds({ tokens: Int32Array.from(tokens), positions: positionsFrom(0, tokens.length), mask: null });
    return [...ids.subarray(prompt.length - 1)];
  } finally {
    seq.dispose();
  }
}

function positionsFrom(start: number, n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => start + i);
}

/** Free-running continuations are compared without their final stop token: node-llama-cpp ends on it without yielding it. */
function score(arm: string, reference: number[][], c: Continuations, stop: Set<number>): Omit<ArmAgreement, 'weightError'> {
  const text = (ids: number[]) => (ids.length && stop.has(ids.at(-1)!) ? ids.slice(0, -1) : ids);
  let identical = 0;
  let prefix = 0;
  let hits = 0;
  let positions = 0;
  reference.forEach((full, p) => {
    const ref = text(full);
    const free = text(c.free[p]);
    let same = 0;
    while (same < ref.length && free[same] === ref[same]) same++;
    if (same === ref.length && free.length === ref.length) identical++;
    prefix += ref.length ? same / ref.length : free.length ? 0 : 1;
    full.forEach((t, i) => {
      if (c.forced[p][i] === t) hits++;
    });
    positions += full.length;
  });
  return { arm, prompts: reference.length, identical, prefixShare: prefix / reference.length, teacherForced: hits / positions };
}

/** How an arm stores a [n, k] matrix, decoded back to fp32. */
type Reconstruct = (w: Float32Array, n: number, k: number) => Float32Array;

function oursReconstruct(arm: OursArm): Reconstruct {
  const bits = arm.dtype === 'q4' ? 4 : 8;
  const { blockSize, zeroPoints } = nbitsSettings(arm.dtype as 'q8' | 'q4', arm.nbits);
  return (w, n, k) => dequantizeNBits(quantizeNBits(w, n, k, bits, blockSize, zeroPoints), n, k, bits, blockSize);
}

function ggufReconstruct(type: GgufWeightType): Reconstruct | null {
  if (type === 'F32') return null;
  const q = GGUF_QUANTIZERS[type];
  return (w) => dequantize(q.type, q.encode(w), w.length);
}

/** RMS of (decoded − fp32) over RMS of fp32, over every matrix both engines quantize (linear layers, untied head). */
function weightError(source: WeightSource, reconstruct: Reconstruct | null): number | null {
  if (!reconstruct) return null;
  const c = source.config;
  const matrices: [string, number][] = c.tiedEmbeddings ? [] : [['lm_head.weight', c.hiddenSize]];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    for (const n of ['q', 'k', 'v']) matrices.push([`${p}.self_attn.${n}_proj.weight`, c.hiddenSize]);
    matrices.push([`${p}.self_attn.o_proj.weight`, c.numHeads * c.headDim], [`${p}.mlp.gate_proj.weight`, c.hiddenSize]);
    matrices.push([`${p}.mlp.up_proj.weight`, c.hiddenSize], [`${p}.mlp.down_proj.weight`, c.intermediateSize]);
  }
  let err = 0;
  let norm = 0;
  for (const [name, k] of matrices) {
    const w = source.tensor(name);
    const d = reconstruct(w, w.length / k, k);
    for (let i = 0; i < w.length; i++) {
      err += (d[i] - w[i]) ** 2;
      norm += w[i] ** 2;
    }
  }
  return Math.sqrt(err / norm);
}

async function llamaCppArms(o: AgreementOptions, source: WeightSource, reference: number[][], stop: Set<number>, skipped: string[]): Promise<ArmAgreement[]> {
  let nlc: typeof import('node-llama-cpp');
  try {
    nlc = await import('node-llama-cpp');
  } catch (err) {
    throw new BenchError(`node-llama-cpp is not installed (a devDependency; or pass --no-llamacpp): ${(err as Error).message}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'quant-agreement-'));
  const llama = await nlc.getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, logLevel: nlc.LlamaLogLevel.error });
  const contextSize = Math.max(...o.prompts.map((p) => p.length)) + o.maxTokens + 8;
  const arms: ArmAgreement[] = [];
  try {
    for (const type of LLAMACPP_TYPES) {
      const arm = `llama.cpp ${type}`;
      if (!ggufTypeFits(type, linearColumns(source.config))) {
        skipped.push(`${arm}: the linear layers' input sizes (${linearColumns(source.config).join(', ')}) are not whole ${type} blocks`);
        continue;
      }
      o.log(arm);
      const path = join(dir, `${type}.gguf`);
      writeGgufFromHf(o.model, path, type);
      const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
      // An fp32 KV cache like ours, so the comparison is about the weights.
      const context = await model.createContext({
        contextSize, threads: o.threads, sequences: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
      });
      try {
        const c: Continuations = { free: [], forced: [] };
        const seq = context.getSequence();
        for (const [p, ids] of o.prompts.entries()) {
          await seq.clearHistory();
          const free: number[] = [];
          for await (const token of seq.evaluate(ids as never[], { temperature: 0 })) {
            free.push(token as number);
            if (stop.has(token as number) || free.length >= o.maxTokens) break;
          }
          await seq.clearHistory();
          const ref = reference[p];
          const input = [...ids, ...ref.slice(0, -1)];
          const greedyNext = { generateNext: { token: true, options: { temperature: 0 } } };
          const outputs = await seq.controlledEvaluate(input.map((t, i) => (i >= ids.length - 1 ? ([t, greedyNext] as never) : (t as never))));
          c.free.push(free);
          c.forced.push(outputs.slice(ids.length - 1).map((r) => (r?.next.token ?? -1) as number));
        }
        arms.push({ ...score(arm, reference, c, stop), weightError: weightError(source, ggufReconstruct(type)) });
      } finally {
        await context.dispose();
        await model.dispose();
      }
    }
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  return arms;
}

export function renderQuantAgreement(r: AgreementResult): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const lines = [
    `${r.model}: ${r.arms[0]?.prompts ?? 0} prompts (${r.promptTokens.min}–${r.promptTokens.max} tokens, mean ${r.promptTokens.mean.toFixed(0)}), ${r.maxTokens} greedy tokens; reference: ${r.reference}`,
    '',
    '| weights | identical continuations | tokens before first difference | teacher-forced top-1 agreement | weight RMS error (relative) |',
    '|---|---:|---:|---:|---:|',
    ...r.arms.map((a) => `| ${a.arm} | ${a.identical}/${a.prompts} | ${pct(a.prefixShare)} | ${pct(a.teacherForced)} | ${a.weightError === null ? '–' : pct(a.weightError)} |`),
    ...r.skipped.map((s) => `\nskipped ${s}`),
  ];
  return `${lines.join('\n')}\n`;
}
