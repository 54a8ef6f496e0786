import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openHfDir } from '../../src/model/builder/sources/hf-dir.js';
import { hfTensorShapes } from '../../src/model/builder/sources/hf-config.js';
import { ModelLoadError, UnsupportedArchitectureError } from '../../src/errors.js';
import { writeSafetensors, type RawTensor } from '../unit/safetensors-writer.js';
import { SHARED_DATA } from '../helpers/paths.js';

const DIR = join(SHARED_DATA, 'models/chat-llama-5m');
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

describe('openHfDir on a hand-made sharded qwen2 directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-dir-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const config = {
    model_type: 'qwen2', hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    intermediate_size: 24, vocab_size: 10, max_position_embeddings: 64, tie_word_embeddings: true, eos_token_id: 3,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [3, 4], bos_token_id: 1 }));
  const shapes = hfTensorShapes({
    vocabSize: 10, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, intermediateSize: 24,
    rmsNormEps: 1e-6, ropeTheta: 1e4, ropeStyle: 'half', tiedEmbeddings: true, attentionBias: true, maxPositions: 64,
    bosTokenId: null, eosTokenIds: [],
  });
  // Layer 0 and the globals in shard 1 as F16 (all 1.0), layer 1 in shard 2 as F32 (all 2.0).
  const shards: [Record<string, RawTensor>, Record<string, RawTensor>] = [{}, {}];
  const weightMap: Record<string, string> = {};
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const second = name.startsWith('model.layers.1.');
    shards[second ? 1 : 0][name] = second
      ? { dtype: 'F32', shape, data: new Uint8Array(new Float32Array(n).fill(2).buffer) }
      : { dtype: 'F16', shape, data: new Uint8Array(new Uint16Array(n).fill(0x3c00).buffer) };
    weightMap[name] = `model-0000${second ? 2 : 1}-of-00002.safetensors`;
  }
  shards.forEach((tensors, i) => writeSafetensors(join(dir, `model-0000${i + 1}-of-00002.safetensors`), tensors));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));

  it('reads the config with generation_config overrides and every tensor from its shard', () => {
    const source = openHfDir(dir);
    expect(source.config).toMatchObject({ attentionBias: true, tiedEmbeddings: true, bosTokenId: 1, eosTokenIds: [3, 4], headDim: 4 });
    expect(source.has('lm_head.weight')).toBe(false);
    expect(Array.from(source.tensor('model.layers.0.self_attn.q_proj.bias'))).toEqual(new Array(16).fill(1));
    expect(source.tensor('model.layers.1.mlp.down_proj.weight').every((x) => x === 2)).toBe(true);
  });

  it('changes the cache key when a weight file changes', () => {
    const before = openHfDir(dir).cacheKey;
    const shard = join(dir, 'model-00002-of-00002.safetensors');
    utimesSync(shard, new Date(), new Date(Date.now() + 5000));
    expect(openHfDir(dir).cacheKey).not.toBe(before);
  });
});

describe('openHfDir errors', () => {
  it('names the directory without config.json', () => {
    expect(() => openHfDir('/nonexistent-model-dir')).toThrow(/\/nonexistent-model-dir: no config\.json/);
  });

  it('names what is missing: weights, or tensors the config implies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-dir-bad-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, vocab_size: 4, max_position_embeddings: 16 }));
      expect(() => openHfDir(dir)).toThrow(/no model\.safetensors or model\.safetensors\.index\.json/);
      writeSafetensors(join(dir, 'model.safetensors'), { 'model.norm.weight': { dtype: 'F32', shape: [8], data: new Uint8Array(32) } });
      expect(() => openHfDir(dir)).toThrow(/missing tensors model\.embed_tokens\.weight/);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gemma' }));
      expect(() => openHfDir(dir)).toThrow(UnsupportedArchitectureError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
