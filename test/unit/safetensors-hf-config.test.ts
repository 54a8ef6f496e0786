import { describe, expect, it } from 'vitest';
import { ModelLoadError, UnsupportedArchitectureError } from '../../src/errors.js';
import { checkTensorShapes, hfTensorShapes, parseHfConfig } from '../../src/model/builder/sources/hf-config.js';

const base = {
  model_type: 'llama',
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 128,
  vocab_size: 100,
  max_position_embeddings: 256,
};

describe('parseHfConfig', () => {
  it('applies the HF defaults', () => {
    const c = parseHfConfig(base);
    expect(c).toMatchObject({
      numKvHeads: 4, headDim: 16, ropeTheta: 10000, rmsNormEps: 1e-6, ropeStyle: 'half',
      tiedEmbeddings: false, attentionBias: false, bosTokenId: null, eosTokenIds: [],
    });
  });

  it('reads qwen2 biases, explicit head_dim, eos lists and lets generation_config win', () => {
    const c = parseHfConfig(
      { ...base, model_type: 'qwen2', head_dim: 32, num_key_value_heads: 2, bos_token_id: 5, eos_token_id: 6, tie_word_embeddings: true, rope_theta: 1e6, sliding_window: 64, use_sliding_window: false },
      { eos_token_id: [6, 7] },
    );
    expect(c).toMatchObject({ attentionBias: true, headDim: 32, numKvHeads: 2, bosTokenId: 5, eosTokenIds: [6, 7], tiedEmbeddings: true, ropeTheta: 1e6, maxPositions: 256 });
    expect(parseHfConfig({ ...base, model_type: 'qwen2', attention_bias: false }).attentionBias).toBe(false);
  });

  it('caps the context at a sliding window that is in use', () => {
    expect(parseHfConfig({ ...base, model_type: 'mistral', sliding_window: 128 }).maxPositions).toBe(128);
  });

  it('rejects unsupported architectures and scalings, naming file and field', () => {
    expect(() => parseHfConfig({ ...base, model_type: 'gpt2' }, null, '/m/config.json')).toThrow(UnsupportedArchitectureError);
    expect(() => parseHfConfig({ ...base, model_type: 'gpt2' }, null, '/m/config.json')).toThrow(/\/m\/config\.json: model_type "gpt2"/);
    expect(() => parseHfConfig({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling type "llama3" is not supported/);
    expect(() => parseHfConfig({ ...base, hidden_act: 'gelu' })).toThrow(/hidden_act "gelu"/);
    expect(parseHfConfig({ ...base, rope_scaling: { rope_type: 'default' } }).ropeTheta).toBe(10000);
  });

  it('rejects missing and malformed fields', () => {
    const { vocab_size: _, ...noVocab } = base;
    expect(() => parseHfConfig(noVocab, null, 'x/config.json')).toThrow(ModelLoadError);
    expect(() => parseHfConfig(noVocab, null, 'x/config.json')).toThrow(/x\/config\.json: missing field "vocab_size"/);
    expect(() => parseHfConfig({ ...base, num_key_value_heads: 3 })).toThrow(/not a multiple/);
    expect(() => parseHfConfig({ ...base, eos_token_id: 'x' })).toThrow(/eos_token_id/);
  });
});

describe('hfTensorShapes / checkTensorShapes', () => {
  it('lists lm_head only when untied and biases only when configured', () => {
    const untied = hfTensorShapes(parseHfConfig(base));
    expect(untied.get('lm_head.weight')).toEqual([100, 64]);
    expect(untied.has('model.layers.0.self_attn.q_proj.bias')).toBe(false);
    const tied = hfTensorShapes(parseHfConfig({ ...base, model_type: 'qwen2', tie_word_embeddings: true, num_key_value_heads: 2 }));
    expect(tied.has('lm_head.weight')).toBe(false);
    expect(tied.get('model.layers.1.self_attn.k_proj.bias')).toEqual([32]);
    expect(tied.size).toBe(2 + 2 * 12);
  });

  it('reports missing tensors and wrong shapes', () => {
    const config = parseHfConfig(base);
    const shapes = hfTensorShapes(config);
    expect(() => checkTensorShapes(config, (n) => shapes.get(n), 'here')).not.toThrow();
    expect(() => checkTensorShapes(config, (n) => (n === 'model.norm.weight' ? undefined : shapes.get(n)), 'here')).toThrow(/here: missing tensors model\.norm\.weight/);
    expect(() => checkTensorShapes(config, (n) => (n === 'model.norm.weight' ? [65] : shapes.get(n)), 'here')).toThrow(/model\.norm\.weight has shape \[65\]/);
  });
});
