import { dirname } from 'node:path';
import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { loadModel } from '../src/model/load.js';
import { openForeignModel } from '../src/model/runtime/foreign-model.js';
import type { LoadedModel } from '../src/model/types.js';

export interface GraphVsExport {
  tokens: number;
  rounds: number;
  ours: { tokensPerSecond: number; ids: number[] };
  export: { tokensPerSecond: number; ids: number[] };
  ratio: number;
  identical: boolean;
}

/**
 * Plain greedy decoding through our tree-capable graph (KV cache in JS, only new rows out) and through a foreign
 * export of the same weights that is fed back its `present` tensors, interleaved A B A B in one process.
 */
export async function graphVsExport(modelPath: string, exportDir: string, opts: { tokens: number; rounds: number; contextLength?: number; threads?: number }): Promise<GraphVsExport> {
  const argv = ['--model', modelPath, '--log-level', 'silent', ...(opts.threads ? ['--threads', String(opts.threads)] : [])];
  const e = toEngineOptions(loadConfig(argv));
  const contextLength = opts.contextLength ?? opts.tokens + 1;
  const ours = await loadModel({ ...e, contextLength }, () => {});
  const foreign = await openForeignModel(exportDir.endsWith('.onnx') ? dirname(exportDir) : exportDir, { threads: e.threads, contextLength });
  try {
    const bos = ours.info.bosTokenId ?? 1;
    const times = { ours: 0, export: 0 };
    let idsOurs: number[] = [];
    let idsExport: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      for (const side of r % 2 === 0 ? (['ours', 'export'] as const) : (['export', 'ours'] as const)) {
        const t0 = performance.now();
        const ids = await greedy(side === 'ours' ? ours : foreign, bos, opts.tokens);
        times[side] += performance.now() - t0;
        if (side === 'ours') idsOurs = ids;
        else idsExport = ids;
      }
    }
    const tps = (ms: number) => (opts.tokens * opts.rounds * 1000) / ms;
    return {
      tokens: opts.tokens,
      rounds: opts.rounds,
      ours: { tokensPerSecond: tps(times.ours), ids: idsOurs },
      export: { tokensPerSecond: tps(times.export), ids: idsExport },
      ratio: times.export / times.ours,
      identical: idsOurs.length === idsExport.length && idsOurs.every((t, i) => t === idsExport[i]),
    };
  } finally {
    await ours.dispose();
    await foreign.dispose();
  }
}

async function greedy(model: LoadedModel, bos: number, tokens: number): Promise<number[]> {
  const seq = model.newSequence();
  const vocab = model.info.vocabSize;
  const token = Int32Array.of(bos);
  const position = Int32Array.of(0);
  const out: number[] = [];
  try {
    for (let i = 0; i < tokens; i++) {
      const logits = await seq.forward({ tokens: token, positions: position, mask: null });
      let best = 0;
      for (let v = 1; v < vocab; v++) if (logits[v] > logits[best]) best = v;
      out.push(best);
      token[0] = best;
      position[0] = i + 1;
    }
  } finally {
    seq.dispose();
  }
  return out;
}
