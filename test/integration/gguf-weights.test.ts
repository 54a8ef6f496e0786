import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hfTensorShapes } from '../../src/model/builder/sources/hf-config.js';
import { openGguf } from '../../src/model/builder/sources/gguf/open-gguf.js';
import { SHARED_DATA } from '../helpers/paths.js';
import { join } from 'node:path';
import { withContextLength } from '../../src/model/builder/source.js';

const GGUF = join(SHARED_DATA, 'models/stories260K/stories260Ktok512.gguf');
if (!existsSync(GGUF)) console.warn(`skipping GGUF weight tests: ${GGUF} is absent`);

describe.skipIf(!existsSync(GGUF))('openGguf on stories260K', () => {
  const source = withContextLength(openGguf(GGUF), 512);

  it('derives the llama2.c config, with the trained context as override', () => {
    expect(source.config).toMatchObject({
      vocabSize: 512, hiddenSize: 64, numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, intermediateSize: 172,
      ropeTheta: 10000, ropeStyle: 'interleaved', attentionBias: false, maxPositions: 512, bosTokenId: 1, eosTokenIds: [2],
    });
    expect(source.config.rmsNormEps).toBeCloseTo(1e-5, 10);
    expect(openGguf(GGUF).config.maxPositions).toBe(128);
    expect(openGguf(GGUF).metadata.get('tokenizer.ggml.model')).toBe('llama');
  });

  it('reads every tensor with the HF element count', () => {
    let total = 0;
    for (const [name, shape] of hfTensorShapes(source.config)) {
      const t = source.tensor(name);
      expect(t.length, name).toBe(shape.reduce((a, b) => a * b, 1));
      expect(t.every(Number.isFinite), name).toBe(true);
      total += t.length;
    }
    // 5 layers × (2·64 norms + 64·64 q + 2·32·64 k,v + 64·64 o + 3·172·64 mlp) + 512·64 embed + 64 norm, + the output copy.
    expect(total).toBe(5 * (128 + 4096 + 4096 + 4096 + 33024) + 32768 + 64 + (source.config.tiedEmbeddings ? 0 : 32768));
  });

  it('holds the output matrix as a copy of the embedding (llama2.c ties them; the converter writes both)', () => {
    // The file carries output.weight, so the source reports untied; the values are the shared matrix.
    expect(source.config.tiedEmbeddings).toBe(false);
    expect(source.tensor('lm_head.weight')).toEqual(source.tensor('model.embed_tokens.weight'));
  });
});
