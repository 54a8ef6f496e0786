/**
 * Forward cost curves of one HF model built several ways (dtype × MatMulNBits settings), all loaded at once and
 * measured round-robin, so machine noise hits every variant alike and ratios are taken within one run.
 */
import { join } from 'node:path';
import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { ensureBuilt } from '../src/model/builder/cache.js';
import { nbitsSettings, type BuildOptions, type NBitsOptions, type WeightDType } from '../src/model/builder/options.js';
import { openHfDir } from '../src/model/builder/sources/hf-dir.js';
import { treeBuildOptions } from '../src/model/load.js';
import { openBuiltModel } from '../src/model/runtime/built-model.js';
import { measureForwardCosts, median } from '../src/model/runtime/forward-cost.js';
import type { LoadedModel } from '../src/model/types.js';
import { BenchError } from './errors.js';

export interface Variant {
  label: string;
  dtype: WeightDType;
  nbits?: NBitsOptions;
}

export const DEFAULT_VARIANTS = 'fp32,q8/b32/a4,q8/b32/a1,q8/b16/a4,q8/b64/a4,q8/b128/a4,q4/b32/a4/zp,q4/b32/a4/sym,q4/b16/a4/zp,q4/b32/a1/zp,q4/b64/a4/zp,q4/b128/a4/zp';

const BLOCKS = [16, 32, 64, 128, 256] as const;
const LEVELS = [0, 1, 2, 3, 4] as const;

/** "q4/b64/a1/zp": dtype, then b<block size>, a<accuracy level>, zp|sym; omitted parts take the defaults. */
export function parseVariant(spec: string): Variant {
  const [dtype, ...parts] = spec.split('/');
  if (!['fp32', 'fp16', 'q8', 'q4'].includes(dtype)) throw new BenchError(`--variants: ${JSON.stringify(spec)} must start with fp32, fp16, q8 or q4`, 2);
  if (dtype === 'fp32' || dtype === 'fp16') {
    if (parts.length) throw new BenchError(`--variants: ${JSON.stringify(spec)}: ${dtype} has no MatMulNBits settings`, 2);
    return { label: dtype, dtype: dtype as WeightDType };
  }
  const nbits: NBitsOptions = {};
  for (const p of parts) {
    const n = Number(p.slice(1));
    if (p[0] === 'b' && BLOCKS.includes(n as never)) nbits.blockSize = n as NBitsOptions['blockSize'];
    else if (p[0] === 'a' && LEVELS.includes(n as never)) nbits.accuracyLevel = n as NBitsOptions['accuracyLevel'];
    else if (p === 'zp' || p === 'sym') nbits.zeroPoints = p === 'zp';
    else throw new BenchError(`--variants: ${JSON.stringify(p)} in ${JSON.stringify(spec)} is not b${BLOCKS.join('|')}, a0..a4, zp or sym`, 2);
  }
  const s = nbitsSettings(dtype as 'q8' | 'q4', nbits);
  return { label: `${dtype} block ${s.blockSize} acc ${s.accuracyLevel}${s.zeroPoints ? ' zp' : ''}`, dtype: dtype as WeightDType, nbits };
}

export interface VariantCurve {
  variant: string;
  /** Whether every row of an 8-token causal forward equals, bit for bit, the same token decoded alone: lookahead is lossless only then. */
  rowExact: boolean;
  /** Per k: median over rounds, and the fastest round. */
  points: { k: number; ms: number; minMs: number }[];
}

export async function runNBitsCost(
  model: string,
  variants: Variant[],
  o: { ks: number[]; past: number; rounds: number; threads: number; log: (line: string) => void },
): Promise<VariantCurve[]> {
  const source = openHfDir(model);
  const engine = toEngineOptions(loadConfig(['--log-level', 'silent']));
  const models: LoadedModel[] = [];
  try {
    for (const v of variants) {
      const options: BuildOptions = { ...treeBuildOptions('cpu', v.dtype), nbits: v.nbits };
      models.push(await openBuiltModel(await ensureBuilt(source, options, join(engine.cacheDir, 'models'), o.log), { threads: o.threads }));
    }
    const times = variants.map(() => o.ks.map((): number[] => []));
    for (let r = 0; r < o.rounds; r++) {
      // Rotate the order so no variant always follows the same neighbour (caches, a busy spell).
      for (let j = 0; j < variants.length; j++) {
        const i = (j + r) % variants.length;
        o.log(`round ${r + 1}/${o.rounds}: ${variants[i].label}`);
        const curve = (await measureForwardCosts(models[i], o.ks, o.past, 1, ['ids'])).ids!;
        curve.forEach((p, n) => times[i][n].push(p.ms));
      }
    }
    const exact: boolean[] = [];
    for (const m of models) exact.push(await rowsExact(m));
    return variants.map((v, i) => ({
      variant: v.label,
      rowExact: exact[i],
      points: o.ks.map((k, n) => ({ k, ms: median(times[i][n]), minMs: Math.min(...times[i][n]) })),
    }));
  } finally {
    for (const m of models) await m.dispose();
  }
}

async function rowsExact(model: LoadedModel, past = 40, k = 8): Promise<boolean> {
  const tokens = Int32Array.from({ length: past + k }, (_, i) => (i * 7919 + 13) % model.info.vocabSize);
  const positions = (from: number, n: number) => Int32Array.from({ length: n }, (_, i) => from + i);
  const wide = model.newSequence();
  const alone = model.newSequence();
  try {
    await wide.forward({ tokens: tokens.subarray(0, past), positions: positions(0, past), mask: null });
    const rows = (await wide.forward({ tokens: tokens.subarray(past), positions: positions(past, k), mask: null })).slice();
    await alone.forward({ tokens: tokens.subarray(0, past), positions: positions(0, past), mask: null });
    const vocab = model.info.vocabSize;
    for (let r = 0; r < k; r++) {
      const row = await alone.forward({ tokens: tokens.subarray(past + r, past + r + 1), positions: positions(past + r, 1), mask: null });
      for (let j = 0; j < vocab; j++) if (row[j] !== rows[r * vocab + j]) return false;
    }
    return true;
  } finally {
    wide.dispose();
    alone.dispose();
  }
}

/** ms per forward (median over rounds) and each k's cost relative to k = 1 of the same variant. */
export function renderNBitsCost(curves: VariantCurve[]): string {
  const ks = curves[0]?.points.map((p) => p.k) ?? [];
  const first = (c: VariantCurve) => c.points[0].ms;
  const lines = [
    `| variant | rows exact | ${ks.map((k) => `k=${k} ms`).join(' | ')} | ${ks.slice(1).map((k) => `×k=${k}`).join(' | ')} |`,
    `|---|---|${ks.map(() => '---:').join('|')}|${ks.slice(1).map(() => '---:').join('|')}|`,
    ...curves.map(
      (c) => `| ${c.variant} | ${c.rowExact ? 'yes' : 'no'} | ${c.points.map((p) => p.ms.toFixed(1)).join(' | ')} | ${c.points.slice(1).map((p) => (p.ms / first(c)).toFixed(2)).join(' | ')} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
