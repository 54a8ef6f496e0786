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

  it('keeps a Mistral sliding window for the graph, and caps the context at a Qwen window in use', () => {
    expect(parseHfConfig({ ...base, model_type: 'mistral', sliding_window: 128 })).toMatchObject({ maxPositions: 256, slidingWindow: 128 });
    expect(parseHfConfig({ ...base, model_type: 'mistral', sliding_window: 4096 }).slidingWindow).toBeUndefined();
    expect(parseHfConfig({ ...base, model_type: 'qwen3', sliding_window: 64, use_sliding_window: true }).maxPositions).toBe(64);
  });

  it('turns llama3 rope_scaling into per-frequency divisors: 1 for short wavelengths, factor for long ones', () => {
    const c = parseHfConfig({
      ...base, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
    });
    const d = c.ropeFreqDivisors!;
    expect(d).toHaveLength(8);
    expect(d[0]).toBe(1);
    expect(d[7]).toBe(8);
    for (let j = 1; j < d.length; j++) expect(d[j]).toBeGreaterThanOrEqual(d[j - 1]);
    expect(parseHfConfig({ ...base, rope_scaling: { type: 'linear', factor: 2 } }).ropeFreqDivisors).toEqual(new Array(8).fill(2));
  });

  it('reads the family details of Qwen3, Gemma 3, Phi-3 / Phi-4-mini and SmolLM3', () => {
    expect(parseHfConfig({ ...base, model_type: 'qwen3', head_dim: 32 })).toMatchObject({ qkNorm: true, headDim: 32, attentionBias: false });
    const gemma = parseHfConfig({
      ...base, model_type: 'gemma3_text', head_dim: 16, query_pre_attn_scalar: 64, sliding_window: 32, rope_local_base_freq: 10000,
      rope_theta: 1e6, hidden_activation: 'gelu_pytorch_tanh', final_logit_softcapping: 30, num_hidden_layers: 6,
    });
    expect(gemma).toMatchObject({
      qkNorm: true, sandwichNorms: true, hiddenAct: 'gelu_tanh', embeddingScale: 8, attentionScale: 1 / 8, slidingWindow: 32,
      slidingLayers: [0, 1, 2, 3, 4], slidingRopeTheta: 10000, ropeTheta: 1e6, finalLogitSoftcap: 30, tiedEmbeddings: true,
    });
    const phi = parseHfConfig({
      ...base, model_type: 'phi3', partial_rotary_factor: 0.75, max_position_embeddings: 1024, original_max_position_embeddings: 256,
      rope_scaling: { type: 'longrope', short_factor: [1, 1, 2, 2, 3, 3], long_factor: [1, 2, 4, 8, 16, 32] },
    });
    expect(phi).toMatchObject({ fusedProjections: true, ropeDim: 12, ropeFreqDivisors: [1, 1, 2, 2, 3, 3], ropeOriginalMaxPositions: 256, maxPositions: 256 });
    expect(phi.ropeAttentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(4) / Math.log(256)), 12);
    expect(parseHfConfig({ ...base, model_type: 'smollm3', num_hidden_layers: 8 }).noRopeLayers).toEqual([3, 7]);
    expect(parseHfConfig({ ...base, model_type: 'smollm3', no_rope_layers: [1, 0] }).noRopeLayers).toEqual([1]);
  });

  it('rejects unsupported architectures and scalings, naming file and field', () => {
    expect(() => parseHfConfig({ ...base, model_type: 'gpt2' }, null, '/m/config.json')).toThrow(UnsupportedArchitectureError);
    expect(() => parseHfConfig({ ...base, model_type: 'gpt2' }, null, '/m/config.json')).toThrow(/\/m\/config\.json: model_type "gpt2"/);
    expect(() => parseHfConfig({ ...base, rope_scaling: { rope_type: 'ntk', factor: 4 } })).toThrow(/rope_scaling type "ntk" is not supported/);
    expect(() => parseHfConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4, mscale: 1, mscale_all_dim: 1 } })).toThrow(/rope_scaling\.mscale is not supported/);
    expect(() => parseHfConfig({ ...base, model_type: 'gemma3' })).toThrow(/model_type "gemma3" is not supported \(the multimodal/);
    expect(() => parseHfConfig({ ...base, model_type: 'gemma3_text', attn_logit_softcapping: 50 })).toThrow(/attn_logit_softcapping/);
    expect(() => parseHfConfig({ ...base, hidden_act: 'gelu' })).toThrow(/hidden_act "gelu"/);
    expect(parseHfConfig({ ...base, rope_scaling: { rope_type: 'default' } }).ropeTheta).toBe(10000);
  });

  it('reads the published configs of Llama 3.2 1B, Qwen3 0.6B, Gemma 3 1B, Phi-4-mini and SmolLM3 3B', () => {
    const llama = parseHfConfig({
      model_type: 'llama', hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64,
      intermediate_size: 8192, vocab_size: 128256, max_position_embeddings: 131072, rope_theta: 500000, tie_word_embeddings: true,
      rope_scaling: { factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], hidden_act: 'silu', mlp_bias: false, attention_bias: false,
    });
    expect(llama.ropeFreqDivisors).toHaveLength(32);
    expect(llama).toMatchObject({ maxPositions: 131072, eosTokenIds: [128001, 128008, 128009], tiedEmbeddings: true });
    const qwen = parseHfConfig({
      model_type: 'qwen3', hidden_size: 1024, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128,
      intermediate_size: 3072, vocab_size: 151936, max_position_embeddings: 40960, rope_theta: 1000000, rope_scaling: null,
      sliding_window: null, use_sliding_window: false, max_window_layers: 28, tie_word_embeddings: true, attention_bias: false, hidden_act: 'silu',
    });
    expect(qwen).toMatchObject({ headDim: 128, qkNorm: true, maxPositions: 40960, attentionBias: false });
    const gemma = parseHfConfig({
      model_type: 'gemma3_text', hidden_size: 1152, num_hidden_layers: 26, num_attention_heads: 4, num_key_value_heads: 1, head_dim: 256,
      intermediate_size: 6912, vocab_size: 262144, max_position_embeddings: 32768, rope_theta: 1000000, rope_local_base_freq: 10000,
      rope_scaling: null, sliding_window: 512, sliding_window_pattern: 6, query_pre_attn_scalar: 256, hidden_activation: 'gelu_pytorch_tanh',
      final_logit_softcapping: null, attn_logit_softcapping: null, rms_norm_eps: 1e-6,
    });
    expect(gemma.slidingLayers).toHaveLength(26 - 4);
    expect(gemma.slidingLayers).not.toContain(5);
    expect(gemma).toMatchObject({ slidingWindow: 512, attentionScale: 1 / 16, tiedEmbeddings: true, hiddenAct: 'gelu_tanh' });
    expect(gemma.finalLogitSoftcap).toBeUndefined();
    const phi = parseHfConfig({
      model_type: 'phi3', hidden_size: 3072, num_hidden_layers: 32, num_attention_heads: 24, num_key_value_heads: 8, intermediate_size: 8192,
      vocab_size: 200064, max_position_embeddings: 131072, original_max_position_embeddings: 4096, partial_rotary_factor: 0.75,
      rope_theta: 10000, sliding_window: 262144, tie_word_embeddings: true, hidden_act: 'silu',
      rope_scaling: { type: 'longrope', short_factor: new Array(48).fill(1), long_factor: new Array(48).fill(2) },
    });
    expect(phi).toMatchObject({ ropeDim: 96, maxPositions: 4096, ropeOriginalMaxPositions: 4096, fusedProjections: true });
    expect(phi.slidingWindow).toBeUndefined();
    const smol = parseHfConfig({
      model_type: 'smollm3', hidden_size: 2048, num_hidden_layers: 36, num_attention_heads: 16, num_key_value_heads: 4, intermediate_size: 11008,
      vocab_size: 128256, max_position_embeddings: 65536, rope_theta: 5000000, no_rope_layer_interval: 4, use_sliding_window: false,
      sliding_window: null, tie_word_embeddings: true, hidden_act: 'silu',
    });
    expect(smol.noRopeLayers).toEqual([3, 7, 11, 15, 19, 23, 27, 31, 35]);
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
