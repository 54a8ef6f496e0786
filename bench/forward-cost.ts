/**
 * Forward cost of k new tokens vs 1 on synthetic models, per attention op and weight dtype.
 * Usage: tsx bench/forward-cost.ts [small|100m|all] [rounds]   (run once, on a quiet machine)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildModel } from '../src/model/builder/build.js';
import type { AttentionKind, WeightDType } from '../src/model/builder/options.js';
import { SyntheticSource, syntheticConfig } from '../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../src/model/runtime/built-model.js';

export { measureForwardCost } from '../src/model/runtime/forward-cost.js';
import { measureForwardCost } from '../src/model/runtime/forward-cost.js';

const KS = [1, 2, 4, 8, 16, 32, 64];
const PAST = 512;

const shapes = {
  // Shaped like data/models/chat-llama-5m.
  small: syntheticConfig({ hiddenSize: 256, numLayers: 4, numHeads: 8, numKvHeads: 4, intermediateSize: 704, vocabSize: 4096 }),
  '100m': syntheticConfig({ hiddenSize: 1024, numLayers: 8, numHeads: 16, numKvHeads: 4, intermediateSize: 2752, vocabSize: 32000 }),
};

const variants: [AttentionKind, WeightDType][] = [
  ['onnx', 'fp32'],
  ['mha', 'fp32'],
  ['gqa', 'fp32'],
  ['onnx', 'fp16'],
  ['onnx', 'q8'],
  ['onnx', 'q4'],
];

async function main(which: string, rounds: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'forward-cost-'));
  try {
    for (const [name, config] of Object.entries(shapes)) {
      if (which !== 'all' && which !== name) continue;
      const source = new SyntheticSource(config, 1);
      for (const [attention, dtype] of variants) {
        const dir = join(root, `${name}-${attention}-${dtype}`);
        await buildModel(source, { dtype, attention, layout: 'tree' }, dir);
        const model = await openBuiltModel(dir, { threads: 2 });
        const cost = await measureForwardCost(model, KS, PAST, rounds);
        const base = cost[0].ms;
        console.log(`${name} ${attention} ${dtype}: ` + cost.map((c) => `k=${c.k} ${c.ms.toFixed(2)}ms (x${(c.ms / base).toFixed(2)})`).join('  '));
        await model.dispose();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv[2] ?? 'all', Number(process.argv[3] ?? 10));
}
