import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { loadModel } from '../src/model/load.js';
import { measureForwardCost, type ForwardCost } from '../src/model/runtime/forward-cost.js';

export const DEFAULT_KS = [1, 2, 4, 8, 16, 32, 64];

/**
 * The per-forward cost curve of a model, measured in this process with the runtime the server uses (same cache
 * directory, so a model the server already built is not built again).
 */
export async function forwardCostCurve(modelPath: string | null, opts: { ks?: number[]; past?: number; rounds?: number; threads?: number } = {}): Promise<ForwardCost[]> {
  const argv = [...(modelPath ? ['--model', modelPath] : []), ...(opts.threads ? ['--threads', String(opts.threads)] : []), '--log-level', 'silent'];
  const engine = toEngineOptions(loadConfig(argv));
  const model = await loadModel(engine, () => {});
  try {
    const ks = (opts.ks ?? DEFAULT_KS).filter((k) => k < model.info.contextLength);
    return await measureForwardCost(model, ks, Math.min(opts.past ?? 256, model.info.contextLength - Math.max(...ks)), opts.rounds ?? 5);
  } finally {
    await model.dispose();
  }
}
