/**
 * Writes a whole model as GGUF (as llama.cpp's converter lays it out) and the same weights as an HF directory,
 * from a WeightSource in HF layout: the fixtures that compare our loaders with llama.cpp.
 * Kept apart from gguf-writer.ts, which only knows the file format.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WeightSource } from '../../src/model/builder/source.js';
import { hfTensorShapes } from '../../src/model/builder/sources/hf-config.js';
import type { LlamaConfig } from '../../src/model/types.js';
import type { Family } from '../helpers/families.js';
import { GGML_Q4_0, GGML_Q4_K, GGML_Q8_0, quantizeQ4_0, quantizeQ4_K, quantizeQ8_0 } from './ggml-quantize.js';
import { kv, writeGguf, type GgufTensorSpec, type GgufValue } from './gguf-writer.js';
import { writeSafetensors } from './safetensors-writer.js';

const F32 = 0;

/** GGUF names of the HF tensors, per architecture (the inverse of open-gguf.ts's map). */
function ggufName(hf: string, arch: string): string {
  const globals: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (hf in globals) return globals[hf];
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hf)!;
  const block: Record<string, string> = {
    'input_layernorm': 'attn_norm',
    'post_attention_layernorm': arch === 'gemma3' ? 'post_attention_norm' : 'ffn_norm',
    'pre_feedforward_layernorm': 'ffn_norm',
    'post_feedforward_layernorm': 'post_ffw_norm',
    'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
    'self_attn.qkv_proj': 'attn_qkv', 'self_attn.o_proj': 'attn_output',
    'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm',
    'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.gate_up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  };
  return `blk.${m[1]}.${block[m[2]]}.${m[3]}`;
}

/** llama.cpp's converter reorders each head's Q/K rows from rotate_half pairs (j, j+hd/2) to adjacent pairs (2j, 2j+1). */
export function permuteForInterleaved(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      out.set(w.subarray((h * headDim + j) * cols, (h * headDim + j + 1) * cols), (h * headDim + 2 * j) * cols);
      out.set(w.subarray((h * headDim + half + j) * cols, (h * headDim + half + j + 1) * cols), (h * headDim + 2 * j + 1) * cols);
    }
  }
  return out;
}

function f32(name: string, dims: number[], data: Float32Array): GgufTensorSpec {
  return { name, dims: [...dims].reverse(), type: F32, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** How the matrices of the linear layers (and an untied output head) are stored; embeddings and norms stay F32. */
export type GgufWeightType = 'F32' | 'Q8_0' | 'Q4_0' | 'Q4_K';

/** The ggml type, block size and encoder behind each quantized weight type. */
export const GGUF_QUANTIZERS = {
  Q8_0: { type: GGML_Q8_0, block: 32, encode: quantizeQ8_0 },
  Q4_0: { type: GGML_Q4_0, block: 32, encode: quantizeQ4_0 },
  Q4_K: { type: GGML_Q4_K, block: 256, encode: quantizeQ4_K },
} as const;

/**
 * The type a [rows, cols] matrix is stored in: `type`, except Q4_K rows that are not whole 256-column super-blocks
 * (Gemma 3 1B's hidden 1152), which go Q4_0, as llama.cpp's quantizer also falls back to a 32-block type for them.
 */
function storedType(type: Exclude<GgufWeightType, 'F32'>, cols: number): Exclude<GgufWeightType, 'F32'> {
  return type === 'Q4_K' && cols % GGUF_QUANTIZERS.Q4_K.block !== 0 ? 'Q4_0' : type;
}

/** Whether every row of these [rows, cols] matrices splits into whole blocks of the type it is stored in. */
export function ggufTypeFits(type: GgufWeightType, cols: number[]): boolean {
  return type === 'F32' || cols.every((c) => c % GGUF_QUANTIZERS[storedType(type, c)].block === 0);
}

function weight(name: string, dims: number[], data: Float32Array, type: GgufWeightType, tied: boolean): GgufTensorSpec {
  // Our q8/q4 builds keep the embedding table fp32 for the lookup, so both engines quantize the same matrices; a tied
  // table is also the head, which ours quantizes (a copy) and llama.cpp reads from token_embd.
  if (type === 'F32' || dims.length !== 2 || (name === 'token_embd.weight' && !tied)) return f32(name, dims, data);
  const q = GGUF_QUANTIZERS[storedType(type, dims[1])];
  if (!ggufTypeFits(type, [dims[1]])) throw new Error(`${name}: ${dims[1]} columns are not whole ${type} blocks of ${q.block}`);
  return { name, dims: [...dims].reverse(), type: q.type, data: q.encode(data) };
}

/** A SentencePiece-style vocabulary llama.cpp accepts; tests feed token ids, so the pieces only need to be distinct. */
function vocabMetadata(c: LlamaConfig): Record<string, GgufValue> {
  // llama.cpp's SPM vocabulary needs all 256 byte-fallback tokens (it tokenizes probe strings at load).
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const tokens = Array.from({ length: c.vocabSize }, (_, i) => ['<unk>', '<s>', '</s>'][i] ?? bytes[i - 3] ?? `▁t${i}`);
  const types = tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1));
  return {
    'tokenizer.ggml.model': kv.str('llama'),
    'tokenizer.ggml.tokens': kv.strs(tokens),
    'tokenizer.ggml.scores': kv.f32s(tokens.map((_, i) => -i)),
    'tokenizer.ggml.token_type': kv.i32s(types),
    'tokenizer.ggml.bos_token_id': kv.u32(1),
    'tokenizer.ggml.eos_token_id': kv.u32(2),
  };
}

/** What each family's GGUF says beyond the common keys, in the keys llama.cpp reads. */
export function familyMetadata(f: Pick<Family, 'ggufArch' | 'config' | 'yarn'>): Record<string, GgufValue> {
  const c = f.config;
  const a = f.ggufArch;
  const out: Record<string, GgufValue> = {};
  if (c.ropeDim !== undefined) out[`${a}.rope.dimension_count`] = kv.u32(c.ropeDim);
  if (f.yarn !== undefined) {
    out[`${a}.rope.scaling.type`] = kv.str('yarn');
    out[`${a}.rope.scaling.factor`] = kv.f32(f.yarn.factor);
    out[`${a}.rope.scaling.original_context_length`] = kv.u32(f.yarn.originalMaxPositions);
  } else if (c.ropeAttentionFactor !== undefined) {
    out[`${a}.rope.scaling.attn_factor`] = kv.f32(c.ropeAttentionFactor);
  }
  if (c.ropeOriginalMaxPositions !== undefined) out[`${a}.rope.scaling.original_context_length`] = kv.u32(c.ropeOriginalMaxPositions);
  // Our reader honours a window in llama-architecture metadata; llama.cpp ignores it there.
  if (a === 'llama' && c.slidingWindow !== undefined) out['llama.attention.sliding_window'] = kv.u32(c.slidingWindow);
  if (a === 'gemma3') {
    // llama.cpp's period: every period-th layer is global, so the first global layer is period - 1.
    const firstGlobal = Array.from({ length: c.numLayers }, (_, i) => i).find((i) => !c.slidingLayers!.includes(i)) ?? c.numLayers - 1;
    out['gemma3.attention.sliding_window'] = kv.u32(c.slidingWindow!);
    out['gemma3.attention.sliding_window_pattern'] = kv.u32(firstGlobal + 1);
    out['gemma3.rope.freq_base_swa'] = kv.f32(c.slidingRopeTheta!);
    if (c.ropeFreqDivisors !== undefined) {
      out['gemma3.rope.scaling.type'] = kv.str('linear');
      out['gemma3.rope.scaling.factor'] = kv.f32(c.ropeFreqDivisors[0]);
    }
    if (c.finalLogitSoftcap !== undefined) out['gemma3.final_logit_softcapping'] = kv.f32(c.finalLogitSoftcap);
  }
  return out;
}

/**
 * Writes `source` (HF layout) as a GGUF of architecture `arch`, with the common hyperparameters and `extra`
 * metadata (tokenizer, family keys). Q/K rows are permuted for the architectures llama.cpp rotates interleaved.
 */
export function writeModelGguf(path: string, arch: string, source: WeightSource, extra: Record<string, GgufValue>, type: GgufWeightType = 'F32'): void {
  const c = source.config;
  const a = arch;
  const interleaved = a === 'llama' || a === 'smollm3';
  const tensors: GgufTensorSpec[] = [];
  for (const [name, dims] of hfTensorShapes(c)) {
    let data = source.tensor(name);
    if (interleaved && name.endsWith('q_proj.weight')) data = permuteForInterleaved(data, c.numHeads, c.headDim, c.hiddenSize);
    if (interleaved && name.endsWith('k_proj.weight')) data = permuteForInterleaved(data, c.numKvHeads, c.headDim, c.hiddenSize);
    tensors.push(weight(ggufName(name, a), dims, data, type, c.tiedEmbeddings));
  }
  if (a === 'llama' && c.ropeFreqDivisors) tensors.push(f32('rope_freqs.weight', [c.ropeFreqDivisors.length], Float32Array.from(c.ropeFreqDivisors)));
  if (a === 'phi3') {
    tensors.push(f32('rope_factors_long.weight', [c.ropeLongFreqDivisors!.length], Float32Array.from(c.ropeLongFreqDivisors!)));
    tensors.push(f32('rope_factors_short.weight', [c.ropeFreqDivisors!.length], Float32Array.from(c.ropeFreqDivisors!)));
  }
  writeGguf(path, {
    metadata: {
      'general.architecture': kv.str(a),
      // Not the family name: llama.cpp special-cases vocabularies by model name ("phi3" expects Phi's added tokens).
      'general.name': kv.str('random weights'),
      [`${a}.context_length`]: kv.u32(c.maxPositions),
      [`${a}.embedding_length`]: kv.u32(c.hiddenSize),
      [`${a}.block_count`]: kv.u32(c.numLayers),
      [`${a}.feed_forward_length`]: kv.u32(c.intermediateSize),
      [`${a}.attention.head_count`]: kv.u32(c.numHeads),
      [`${a}.attention.head_count_kv`]: kv.u32(c.numKvHeads),
      [`${a}.attention.key_length`]: kv.u32(c.headDim),
      [`${a}.attention.value_length`]: kv.u32(c.headDim),
      [`${a}.attention.layer_norm_rms_epsilon`]: kv.f32(c.rmsNormEps),
      [`${a}.rope.freq_base`]: kv.f32(c.ropeTheta),
      ...extra,
    },
    tensors,
  });
}

/** Writes `source` (HF layout) as an F32 GGUF of `family`'s architecture, with a placeholder vocabulary. */
export function writeFamilyGguf(path: string, f: Family, source: WeightSource): void {
  writeModelGguf(path, f.ggufArch, source, { ...familyMetadata(f), ...vocabMetadata(source.config) });
}

/** The config.json an HF checkpoint of this family would carry. */
export function familyHfConfig(f: Family): Record<string, unknown> {
  const c = f.config;
  const json: Record<string, unknown> = {
    model_type: f.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds[0],
  };
  switch (f.name) {
    case 'llama3':
      return { ...json, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 } };
    case 'mistral':
      return { ...json, sliding_window: c.slidingWindow };
    case 'qwen2':
      return {
        ...json,
        rope_scaling: { rope_type: 'yarn', factor: f.yarn!.factor, original_max_position_embeddings: f.yarn!.originalMaxPositions },
      };
    case 'qwen3':
      return json;
    case 'gemma3':
      return {
        ...json, hidden_activation: 'gelu_pytorch_tanh', query_pre_attn_scalar: c.headDim, sliding_window: c.slidingWindow,
        layer_types: Array.from({ length: c.numLayers }, (_, i) => (c.slidingLayers!.includes(i) ? 'sliding_attention' : 'full_attention')),
        rope_local_base_freq: c.slidingRopeTheta, rope_scaling: { rope_type: 'linear', factor: c.ropeFreqDivisors![0] },
        final_logit_softcapping: c.finalLogitSoftcap, attn_logit_softcapping: null,
      };
    case 'phi3':
      return {
        ...json, partial_rotary_factor: c.ropeDim! / c.headDim, original_max_position_embeddings: c.ropeOriginalMaxPositions,
        max_position_embeddings: c.ropeOriginalMaxPositions! * 8,
        rope_scaling: { type: 'longrope', short_factor: c.ropeFreqDivisors, long_factor: c.ropeLongFreqDivisors },
      };
    case 'smollm3':
      return { ...json, no_rope_layers: Array.from({ length: c.numLayers }, (_, i) => (c.noRopeLayers!.includes(i) ? 0 : 1)) };
  }
}

/** Writes config.json + model.safetensors (F32) of the same weights; Gemma's norms go back to HF's (1 + w) form. */
export function writeFamilyHfDir(dir: string, f: Family, source: WeightSource): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(familyHfConfig(f), null, 2));
  const tensors: Record<string, { dtype: string; shape: number[]; data: Uint8Array }> = {};
  for (const [name, shape] of hfTensorShapes(source.config)) {
    const data = source.tensor(name).slice();
    if (f.modelType === 'gemma3_text' && name.endsWith('norm.weight')) for (let i = 0; i < data.length; i++) data[i] -= 1;
    tensors[name] = { dtype: 'F32', shape, data: new Uint8Array(data.buffer) };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
}
