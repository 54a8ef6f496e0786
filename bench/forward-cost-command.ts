import { join } from 'node:path';
import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { ensureBuilt } from '../src/model/builder/cache.js';
import { SyntheticSource, syntheticConfig } from '../src/model/builder/sources/synthetic.js';
import { loadModel, treeBuildOptions } from '../src/model/load.js';
import { measureBatchCost, measureForwardCosts, type BatchCost, type ForwardCost, type ForwardCostSpread, type ForwardOutput } from '../src/model/runtime/forward-cost.js';
import type { LoadedModel } from '../src/model/types.js';
import { resolveExecutionProvider } from '../src/model/runtime/session.js';

export const DEFAULT_KS = [1, 2, 4, 8, 16, 32, 64];

export interface ForwardCostOptions {
  ks?: number[];
  past?: number;
  rounds?: number;
  threads?: number;
  /** Measure a synthetic model with this vocabulary instead of `modelPath` (a real 128K–152K vocabulary's LM head). */
  vocab?: number;
  executionProvider?: string;
  /** What each forward brings back (default ids, what greedy decoding runs). */
  outputs?: ForwardOutput[];
}

/**
 * Per-forward cost curves of a model, measured in this process with the runtime the server uses (same cache
 * directory, so a model the server already built is not built again).
 */
export async function forwardCostCurves(modelPath: string | null, opts: ForwardCostOptions = {}): Promise<Partial<Record<ForwardOutput, ForwardCostSpread[]>>> {
  return withModel(modelPath, opts, (model, ks, past) => measureForwardCosts(model, ks, past, opts.rounds ?? 5, opts.outputs ?? ['ids']));
}

/** One forwardBatch of b sequences × k tokens against b single-sequence forwards, for each b and k. */
export async function forwardBatchCosts(modelPath: string | null, bs: number[], opts: ForwardCostOptions = {}): Promise<BatchCost[]> {
  return withModel(modelPath, opts, (model, ks, past) => measureBatchCost(model, bs, ks, past, opts.rounds ?? 5));
}

export function renderBatchCosts(costs: BatchCost[]): string {
  const lines = [
    'forwardBatch of b sequences × k tokens vs b separate forwards:',
    '',
    '| b | k | one forwardBatch ms, median (min) | b forwards ms, median (min) | batched / separate, median (min) |',
    '|---:|---:|---:|---:|---:|',
    ...costs.map(
      (c) =>
        `| ${c.b} | ${c.k} | ${c.batchedMs.toFixed(1)} (${c.batchedMinMs.toFixed(1)}) | ${c.separateMs.toFixed(1)} (${c.separateMinMs.toFixed(1)}) | ` +
        `${(c.batchedMs / c.separateMs).toFixed(2)} (${(c.batchedMinMs / c.separateMinMs).toFixed(2)}) |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

async function withModel<T>(modelPath: string | null, opts: ForwardCostOptions, measure: (model: LoadedModel, ks: number[], past: number) => Promise<T>): Promise<T> {
  const argv = [
    ...(opts.threads ? ['--threads', String(opts.threads)] : []),
    ...(opts.executionProvider ? ['--execution-provider', opts.executionProvider] : []),
    '--log-level',
    'silent',
  ];
  const engine = toEngineOptions(loadConfig(argv));
  const model = await loadModel({ ...engine, model: opts.vocab ? await syntheticModel(opts.vocab, engine) : modelPath }, () => {});
  try {
    const ks = (opts.ks ?? DEFAULT_KS).filter((k) => k < model.info.contextLength);
    const past = Math.min(opts.past ?? 256, model.info.contextLength - Math.max(...ks));
    return await measure(model, ks, past);
  } finally {
    await model.dispose();
  }
}

export async function forwardCostCurve(modelPath: string | null, opts: ForwardCostOptions = {}): Promise<ForwardCost[]> {
  return (await forwardCostCurves(modelPath, { ...opts, outputs: ['ids'] })).ids!.map(({ k, ms }) => ({ k, ms }));
}

/** A small decoder (256 wide, 4 layers) with a large vocabulary, built once into the cache. */
async function syntheticModel(vocab: number, engine: ReturnType<typeof toEngineOptions>): Promise<string> {
  const config = syntheticConfig({ hiddenSize: 256, numLayers: 4, numHeads: 8, numKvHeads: 4, vocabSize: vocab, tiedEmbeddings: true, maxPositions: 1024 });
  const ep = await resolveExecutionProvider(engine.executionProvider, () => {});
  return ensureBuilt(new SyntheticSource(config, 2026), treeBuildOptions(ep, engine.dtype), join(engine.cacheDir, 'models'), () => {});
}

/** A markdown table of the ids and logits curves side by side. */
export function renderOutputComparison(curves: Partial<Record<ForwardOutput, ForwardCostSpread[]>>): string {
  const ids = curves.ids ?? [];
  const logits = curves.logits ?? [];
  const saved = (a: number, b: number) => `${(((b - a) / b) * 100).toFixed(1)}%`;
  const lines = [
    '| k | ids (in-graph argmax) median / min ms | logits + JS scan median / min ms | saved (median) | saved (min) |',
    '|---:|---:|---:|---:|---:|',
  ];
  ids.forEach((p, i) => {
    const l = logits[i] ?? { ms: NaN, minMs: NaN };
    lines.push(`| ${p.k} | ${p.ms.toFixed(3)} / ${p.minMs.toFixed(3)} | ${l.ms.toFixed(3)} / ${l.minMs.toFixed(3)} | ${saved(p.ms, l.ms)} | ${saved(p.minMs, l.minMs)} |`);
  });
  return `${lines.join('\n')}\n`;
}
