import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import type { WeightDType } from '../../src/model/builder/options.js';
import type { WeightSource } from '../../src/model/builder/source.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';

const root = mkdtempSync(join(tmpdir(), 'tied-head-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The same weights with the embedding also stored as lm_head.weight, as an untied checkpoint would hold them. */
function untied(source: WeightSource): WeightSource {
  return {
    cacheKey: `${source.cacheKey}:untied`,
    config: { ...source.config, tiedEmbeddings: false },
    has: (name) => name === 'lm_head.weight' || source.has(name),
    tensor: (name) => source.tensor(name === 'lm_head.weight' ? 'model.embed_tokens.weight' : name),
  };
}

async function logits(source: WeightSource, dtype: WeightDType, name: string): Promise<Float32Array> {
  const dir = join(root, name);
  await buildModel(source, { dtype, attention: 'exact', layout: 'tree' }, dir);
  const model = await openBuiltModel(dir);
  const seq = model.newSequence();
  const tokens = Int32Array.from([1, 40, 7, 200, 12, 99]);
  const out = (await seq.forward({ tokens, positions: Int32Array.from(tokens, (_, i) => i), mask: null })).slice();
  seq.dispose();
  await model.dispose();
  return out;
}

// Every token reads the whole head and one row of the embedding: under q8/q4 a tied head is a quantized copy of the
// embedding (the lookup stays fp32), exactly what the same checkpoint stored untied gives.
describe.each(['q8', 'q4'] as WeightDType[])('a tied LM head under %s', (dtype) => {
  it('is quantized: its logits equal the untied checkpoint bit for bit', async () => {
    const tied = new SyntheticSource(syntheticConfig({ hiddenSize: 64, numLayers: 1, numHeads: 4, vocabSize: 256, tiedEmbeddings: true }), 3);
    const a = await logits(tied, dtype, `${dtype}-tied`);
    const b = await logits(untied(tied), dtype, `${dtype}-untied`);
    expect(a).toEqual(b);
  });
});
