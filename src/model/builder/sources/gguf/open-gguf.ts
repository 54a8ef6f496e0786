import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { ModelLoadError, UnsupportedArchitectureError } from '../../../../errors.js';
import type { LlamaConfig } from '../../../types.js';
import type { WeightSource } from '../../source.js';
import { checkTensorShapes } from '../hf-config.js';
import { readBytes } from '../read-bytes.js';
import { yarnRope } from '../../rope.js';
import { dequantize, ggmlTypeName, isSupportedGgmlType, type GgmlType } from './ggml-types.js';
import { readGgufFile, type GgufFile, type GgufTensorInfo } from './gguf-file.js';

export type GgufWeightSource = WeightSource & { readonly metadata: Map<string, unknown> };

const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

const BLOCK_NAMES: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_qkv.weight': 'self_attn.qkv_proj.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_q_norm.weight': 'self_attn.q_norm.weight',
  'attn_k_norm.weight': 'self_attn.k_norm.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};

/**
 * Gemma's norms sit elsewhere: ffn_norm is the pre-MLP norm, and two more norms follow attention and the MLP.
 * llama.cpp's converter already stores them as (1 + w), the multiplier the weight contract holds.
 */
const GEMMA_BLOCK_NAMES: Record<string, string> = {
  ...BLOCK_NAMES,
  'post_attention_norm.weight': 'post_attention_layernorm.weight',
  'ffn_norm.weight': 'pre_feedforward_layernorm.weight',
  'post_ffw_norm.weight': 'post_feedforward_layernorm.weight',
};

/** Architectures read, and whether their converter permuted Q/K rows for llama.cpp's interleaved ("normal") RoPE. */
const ARCHITECTURES: Record<string, { interleaved: boolean }> = {
  llama: { interleaved: true },
  smollm3: { interleaved: true },
  qwen2: { interleaved: false },
  qwen3: { interleaved: false },
  gemma3: { interleaved: false },
  phi3: { interleaved: false },
};

/** The HF name of a GGUF tensor, or null for tensors outside the contract. */
export function hfNameOfGgufTensor(name: string, arch = 'llama'): string | null {
  if (name in GLOBAL_NAMES) return GLOBAL_NAMES[name];
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  const names = arch === 'gemma3' ? GEMMA_BLOCK_NAMES : BLOCK_NAMES;
  if (m === null || !(m[2] in names)) return null;
  // Phi-3's GGUF keeps gate and up fused under ffn_up.
  if (arch === 'phi3' && m[2] === 'ffn_up.weight') return `model.layers.${m[1]}.mlp.gate_up_proj.weight`;
  return `model.layers.${m[1]}.${names[m[2]]}`;
}

function intKey(meta: Map<string, unknown>, key: string, path: string, fallback?: number): number {
  const v = meta.get(key);
  if (v === undefined && fallback !== undefined) return fallback;
  if (v === undefined) throw new ModelLoadError(`${path}: missing metadata ${key}`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new UnsupportedArchitectureError(`${path}: metadata ${key} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function numberKey(meta: Map<string, unknown>, key: string, path: string, fallback: number): number {
  const v = meta.get(key) ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ModelLoadError(`${path}: metadata ${key} must be a positive number`);
  return v;
}

function tokenId(meta: Map<string, unknown>, key: string): number | null {
  const v = meta.get(key);
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
}

/** A small F32/F16 tensor read whole (rope frequency factors). */
type ReadTensor = (name: string) => Float32Array;

function configOf(file: GgufFile, read: ReadTensor): LlamaConfig {
  const { metadata: meta, path } = file;
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string' || !(arch in ARCHITECTURES)) {
    throw new UnsupportedArchitectureError(`${path}: GGUF architecture "${String(arch)}" is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  const key = (k: string) => `${arch}.${k}`;
  const hiddenSize = intKey(meta, key('embedding_length'), path);
  const numHeads = intKey(meta, key('attention.head_count'), path);
  const numKvHeads = intKey(meta, key('attention.head_count_kv'), path, numHeads);
  if (numHeads % numKvHeads !== 0) throw new ModelLoadError(`${path}: head_count ${numHeads} is not a multiple of head_count_kv ${numKvHeads}`);
  const headDim = intKey(meta, key('attention.key_length'), path, Math.floor(hiddenSize / numHeads));
  if (intKey(meta, key('attention.value_length'), path, headDim) !== headDim) {
    throw new UnsupportedArchitectureError(`${path}: ${key('attention.value_length')} differs from key_length`);
  }
  const ropeDim = intKey(meta, key('rope.dimension_count'), path, headDim);
  if (ropeDim !== headDim && arch !== 'phi3') {
    throw new UnsupportedArchitectureError(`${path}: ${key('rope.dimension_count')} ≠ head size ${headDim} (partial RoPE is read for phi3 only)`);
  }
  const numLayers = intKey(meta, key('block_count'), path);
  const tokens = meta.get('tokenizer.ggml.tokens');
  const vocabSize = Array.isArray(tokens) ? tokens.length : intKey(meta, key('vocab_size'), path);
  // A context the metadata understates (stories260K says 128, trained with 512) is set with withContextLength.
  const maxPositions = intKey(meta, key('context_length'), path);
  const bos = tokenId(meta, 'tokenizer.ggml.bos_token_id');
  const eos = [tokenId(meta, 'tokenizer.ggml.eos_token_id'), tokenId(meta, 'tokenizer.ggml.eot_token_id')];
  const window = meta.get(key('attention.sliding_window'));
  return {
    vocabSize,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: intKey(meta, key('feed_forward_length'), path),
    rmsNormEps: numberKey(meta, key('attention.layer_norm_rms_epsilon'), path, 1e-5),
    ropeTheta: numberKey(meta, key('rope.freq_base'), path, 10000),
    // GGUF converters permute HF's Q/K rows for interleaved RoPE; llama2.c weights are interleaved natively.
    ropeStyle: ARCHITECTURES[arch].interleaved ? 'interleaved' : 'half',
    tiedEmbeddings: !file.tensors.has('output.weight'),
    attentionBias: file.tensors.has('blk.0.attn_q.bias'),
    maxPositions,
    bosTokenId: bos,
    eosTokenIds: [...new Set(eos.filter((id): id is number => id !== null))],
    ...ropeScalingOf(file, arch, ropeDim, read),
    ...(arch === 'phi3' ? { fusedProjections: true, ...(ropeDim === headDim ? {} : { ropeDim }) } : {}),
    ...(arch === 'qwen3' ? { qkNorm: true } : {}),
    // llama.cpp hard-codes SmolLM3's NoPE layers as every 4th.
    ...(arch === 'smollm3' ? noRope(numLayers, 4) : {}),
    ...(arch === 'gemma3' ? gemma3Of(meta, path, numLayers, hiddenSize, headDim) : typeof window === 'number' && window > 0 && window < maxPositions ? { slidingWindow: window } : {}),
  };
}

function noRope(numLayers: number, step: number): Partial<LlamaConfig> {
  const layers = Array.from({ length: numLayers }, (_, i) => i).filter((i) => (i + 1) % step === 0);
  return layers.length > 0 ? { noRopeLayers: layers } : {};
}

function ropeScalingOf(file: GgufFile, arch: string, ropeDim: number, read: ReadTensor): Partial<LlamaConfig> {
  const { metadata: meta, path } = file;
  const scaling = meta.get(`${arch}.rope.scaling.type`) ?? 'none';
  const factor = meta.get(`${arch}.rope.scaling.factor`) ?? meta.get(`${arch}.rope.scale_linear`);
  const out: Partial<LlamaConfig> = {};
  if (scaling === 'linear' && typeof factor === 'number' && factor > 0 && factor !== 1) {
    out.ropeFreqDivisors = new Array<number>(ropeDim / 2).fill(factor);
  } else if (scaling === 'yarn' && typeof factor === 'number' && factor > 1) {
    return yarnOf(meta, path, arch, ropeDim, factor);
  } else if (scaling !== 'none' && scaling !== 'linear' && scaling !== 'yarn') {
    throw new UnsupportedArchitectureError(`${path}: ${arch}.rope.scaling.type "${String(scaling)}" is not supported (none, linear, yarn, rope_freqs / LongRoPE factors)`);
  }
  const factors = (name: string) => {
    const t = read(name);
    if (t.length !== ropeDim / 2) throw new ModelLoadError(`${path}: ${name} holds ${t.length} factors, expected ${ropeDim / 2}`);
    return Array.from(t);
  };
  // Llama 3.1's scaling comes as per-frequency divisors, the same numbers llama3Divisors derives from config.json.
  if (file.tensors.has('rope_freqs.weight')) out.ropeFreqDivisors = factors('rope_freqs.weight');
  if (file.tensors.has('rope_factors_short.weight')) {
    out.ropeFreqDivisors = factors('rope_factors_short.weight');
    out.ropeLongFreqDivisors = factors('rope_factors_long.weight');
    out.ropeOriginalMaxPositions = intKey(meta, `${arch}.rope.scaling.original_context_length`, path, intKey(meta, `${arch}.context_length`, path));
  }
  const attnFactor = meta.get(`${arch}.rope.scaling.attn_factor`);
  if (typeof attnFactor === 'number' && attnFactor !== 1) out.ropeAttentionFactor = attnFactor;
  return out;
}

/** YaRN as llama.cpp applies it: its ramp and temperature, with the GGUF's own beta and attention-factor keys. */
function yarnOf(meta: Map<string, unknown>, path: string, arch: string, ropeDim: number, factor: number): Partial<LlamaConfig> {
  const key = (k: string) => `${arch}.rope.scaling.${k}`;
  // DeepSeek's log multiplier and a partial extrapolation mix are other recipes than Qwen's and Llama's.
  const logMul = meta.get(key('yarn_log_multiplier'));
  const ext = meta.get(key('yarn_ext_factor'));
  if ((typeof logMul === 'number' && logMul !== 0) || (typeof ext === 'number' && ext >= 0 && ext !== 1)) {
    throw new UnsupportedArchitectureError(`${path}: YaRN with ${key('yarn_log_multiplier')} or ${key('yarn_ext_factor')} is not supported`);
  }
  const attn = meta.get(key('yarn_attn_factor'));
  const yarn = yarnRope(numberKey(meta, `${arch}.rope.freq_base`, path, 10000), ropeDim, {
    factor,
    originalMaxPositions: intKey(meta, key('original_context_length'), path, intKey(meta, `${arch}.context_length`, path)),
    betaFast: numberKey(meta, key('yarn_beta_fast'), path, 32),
    betaSlow: numberKey(meta, key('yarn_beta_slow'), path, 1),
  });
  // llama.cpp multiplies its own temperature by yarn_attn_factor (1 unless the converter wrote one).
  const attentionFactor = yarn.attentionFactor * (typeof attn === 'number' && attn > 0 ? attn : 1);
  return { ropeFreqDivisors: yarn.divisors, ...(attentionFactor === 1 ? {} : { ropeAttentionFactor: attentionFactor }) };
}

/** Gemma 3 as llama.cpp reads it: window, period of local/global layers, the local RoPE base, q scale 1/sqrt(head). */
function gemma3Of(meta: Map<string, unknown>, path: string, numLayers: number, hiddenSize: number, headDim: number): Partial<LlamaConfig> {
  const window = meta.get('gemma3.attention.sliding_window');
  const softcap = meta.get('gemma3.final_logit_softcapping');
  const out: Partial<LlamaConfig> = {
    qkNorm: true,
    sandwichNorms: true,
    hiddenAct: 'gelu_tanh',
    embeddingScale: Math.sqrt(hiddenSize),
    // llama.cpp's rule: 1/sqrt(head size), except Gemma 3 27B (62 layers), which scales by hidden/heads.
    attentionScale: numLayers === 62 ? 1 / Math.sqrt(hiddenSize / intKey(meta, 'gemma3.attention.head_count', path)) : 1 / Math.sqrt(headDim),
    ...(typeof softcap === 'number' && softcap > 0 ? { finalLogitSoftcap: softcap } : {}),
  };
  if (typeof window === 'number' && window > 0) {
    const period = intKey(meta, 'gemma3.attention.sliding_window_pattern', path, 6);
    out.slidingLayers = Array.from({ length: numLayers }, (_, i) => i).filter((i) => i % period < period - 1);
    out.slidingRopeTheta = numberKey(meta, 'gemma3.rope.freq_base_swa', path, 10000);
    if (window < intKey(meta, 'gemma3.context_length', path)) out.slidingWindow = window;
  }
  return out;
}

function cacheKeyOf(path: string): string {
  const st = statSync(path);
  const hash = createHash('sha256').update(`${realpathSync(path)}\0${st.size}\0${st.mtimeMs}`);
  return `gguf:${hash.digest('hex')}`;
}

/**
 * A WeightSource over a llama-architecture GGUF file under HF tensor names.
 * GGUF lists dims innermost first, so a weight with ne = [in, out] is stored row-major [out][in]: HF layout as is.
 */
export function openGguf(path: string): GgufWeightSource {
  const file = readGgufFile(path);
  const readable = new Map<string, { info: GgufTensorInfo; type: GgmlType; byteLength: number }>();
  const check = (info: GgufTensorInfo) => {
    if (!isSupportedGgmlType(info.type) || info.byteLength === null) {
      throw new ModelLoadError(`${path}: tensor ${info.name} has type ${ggmlTypeName(info.type)}, which is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)`);
    }
    return { info, type: info.type, byteLength: info.byteLength };
  };
  const read = (t: { info: GgufTensorInfo; type: GgmlType; byteLength: number }) => dequantize(t.type, readBytes(path, t.info.offset, t.byteLength), t.info.elements);
  const readByGgufName = (name: string) => {
    const info = file.tensors.get(name);
    if (info === undefined) throw new ModelLoadError(`${path}: no tensor ${name}`);
    return read(check(info));
  };
  const config = configOf(file, readByGgufName);
  const arch = String(file.metadata.get('general.architecture'));
  const byHfName = new Map<string, GgufTensorInfo>();
  for (const info of file.tensors.values()) {
    const hf = hfNameOfGgufTensor(info.name, arch);
    if (hf !== null) byHfName.set(hf, info);
  }
  checkTensorShapes(config, (name) => byHfName.get(name)?.dims.toReversed(), path);
  for (const [hf, info] of byHfName) readable.set(hf, check(info));
  return {
    cacheKey: cacheKeyOf(path),
    config,
    metadata: file.metadata,
    has: (name) => readable.has(name),
    tensor(name: string): Float32Array {
      const t = readable.get(name);
      if (t === undefined) throw new ModelLoadError(`${path}: no tensor ${name}`);
      return read(t);
    },
  };
}
