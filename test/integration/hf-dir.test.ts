import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openHfDir } from '../../src/model/builder/sources/hf-dir.js';
import { hfTensorShapes } from '../../src/model/builder/sources/hf-config.js';
import { ModelLoadError } from '../../src/errors.js';

const DIR = '/work/shared/data/models/chat-llama-5m';
if (!existsSync(DIR)) console.warn(`skipping hf-dir tests: ${DIR} is absent`);

describe.skipIf(!existsSync(DIR))('openHfDir on chat-llama-5m (BF16)', () => {
  const source = openHfDir(DIR);

  it('parses the config', () => {
    expect(source.config).toEqual({
      vocabSize: 4096, hiddenSize: 256, numLayers: 4, numHeads: 8, numKvHeads: 4, headDim: 32, intermediateSize: 704,
      rmsNormEps: 1e-5, ropeTheta: 10000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false,
      maxPositions: 2048, bosTokenId: null, eosTokenIds: [2],
    });
  });

  it('reads every tensor with the right element count, 5,048,576 parameters in all', () => {
    let total = 0;
    for (const [name, shape] of hfTensorShapes(source.config)) {
      expect(source.has(name)).toBe(true);
      const t = source.tensor(name);
      expect(t.length).toBe(shape.reduce((a, b) => a * b, 1));
      expect(t.every(Number.isFinite)).toBe(true);
      total += t.length;
    }
    expect(total).toBe(5_048_576);
    expect(source.has('lm_head.weight')).toBe(true);
  });

  it('decodes plausible values: norm weights near 1, embeddings small and varied', () => {
    const norm = source.tensor('model.norm.weight');
    const meanNorm = norm.reduce((a, b) => a + b, 0) / norm.length;
    expect(meanNorm).toBeGreaterThan(0.1);
    expect(meanNorm).toBeLessThan(10);
    const emb = source.tensor('model.embed_tokens.weight');
    const maxAbs = emb.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    expect(maxAbs).toBeGreaterThan(0.01);
    expect(maxAbs).toBeLessThan(100);
  });

  it('has a stable cache key and throws ModelLoadError for unknown tensors', () => {
    expect(openHfDir(DIR).cacheKey).toBe(source.cacheKey);
    expect(() => source.tensor('model.layers.9.mlp.up_proj.weight')).toThrow(ModelLoadError);
  });
});

describe('openHfDir errors', () => {
  it('names the directory without config.json', () => {
    expect(() => openHfDir('/nonexistent-model-dir')).toThrow(/\/nonexistent-model-dir: no config\.json/);
  });
});
