import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { ModelLoadError, UnsupportedArchitectureError } from '../../../../errors.js';
import type { LlamaConfig } from '../../../types.js';
import type { WeightSource } from '../../source.js';
import { checkTensorShapes } from '../hf-config.js';
import { readBytes } from '../read-bytes.js';
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
  'attn_output.weight': 'self_attn.o_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};

/** The HF name of a llama-architecture GGUF tensor, or null for tensors outside the contract. */
export function hfNameOfGgufTensor(name: string): string | null {
  if (name in GLOBAL_NAMES) return GLOBAL_NAMES[name];
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (m === null || !(m[2] in BLOCK_NAMES)) return null;
  return `model.layers.${m[1]}.${BLOCK_NAMES[m[2]]}`;
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

function configOf(file: GgufFile): LlamaConfig {
  const { metadata: meta, path } = file;
  const arch = meta.get('general.architecture');
  if (arch !== 'llama') {
    throw new UnsupportedArchitectureError(`${path}: GGUF architecture "${String(arch)}" is not supported (only llama)`);
  }
  const scaling = meta.get('llama.rope.scaling.type');
  if (scaling !== undefined && scaling !== 'none') {
    throw new UnsupportedArchitectureError(`${path}: llama.rope.scaling.type "${String(scaling)}" is not supported (only unscaled RoPE)`);
  }
  if (file.tensors.has('rope_freqs.weight')) {
    throw new UnsupportedArchitectureError(`${path}: rope_freqs.weight (Llama 3.1 style RoPE scaling) is not supported`);
  }
  const hiddenSize = intKey(meta, 'llama.embedding_length', path);
  const numHeads = intKey(meta, 'llama.attention.head_count', path);
  const numKvHeads = intKey(meta, 'llama.attention.head_count_kv', path, numHeads);
  if (numHeads % numKvHeads !== 0) throw new ModelLoadError(`${path}: head_count ${numHeads} is not a multiple of head_count_kv ${numKvHeads}`);
  const headDim = intKey(meta, 'llama.attention.key_length', path, Math.floor(hiddenSize / numHeads));
  if (intKey(meta, 'llama.attention.value_length', path, headDim) !== headDim) {
    throw new UnsupportedArchitectureError(`${path}: llama.attention.value_length differs from key_length`);
  }
  if (intKey(meta, 'llama.rope.dimension_count', path, headDim) !== headDim) {
    throw new UnsupportedArchitectureError(`${path}: llama.rope.dimension_count ≠ head size ${headDim} (partial RoPE is not supported)`);
  }
  const tokens = meta.get('tokenizer.ggml.tokens');
  const vocabSize = Array.isArray(tokens) ? tokens.length : intKey(meta, 'llama.vocab_size', path);
  // A context the metadata understates (stories260K says 128, trained with 512) is set with withContextLength.
  const maxPositions = intKey(meta, 'llama.context_length', path);
  const bos = tokenId(meta, 'tokenizer.ggml.bos_token_id');
  const eos = [tokenId(meta, 'tokenizer.ggml.eos_token_id'), tokenId(meta, 'tokenizer.ggml.eot_token_id')];
  return {
    vocabSize,
    hiddenSize,
    numLayers: intKey(meta, 'llama.block_count', path),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: intKey(meta, 'llama.feed_forward_length', path),
    rmsNormEps: numberKey(meta, 'llama.attention.layer_norm_rms_epsilon', path, 1e-5),
    ropeTheta: numberKey(meta, 'llama.rope.freq_base', path, 10000),
    // GGUF converters permute HF's Q/K rows for interleaved RoPE; llama2.c weights are interleaved natively.
    ropeStyle: 'interleaved',
    tiedEmbeddings: !file.tensors.has('output.weight'),
    attentionBias: file.tensors.has('blk.0.attn_q.bias'),
    maxPositions,
    bosTokenId: bos,
    eosTokenIds: [...new Set(eos.filter((id): id is number => id !== null))],
  };
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
  const config = configOf(file);
  const byHfName = new Map<string, GgufTensorInfo>();
  for (const info of file.tensors.values()) {
    const hf = hfNameOfGgufTensor(info.name);
    if (hf !== null) byHfName.set(hf, info);
  }
  checkTensorShapes(config, (name) => byHfName.get(name)?.dims.toReversed(), path);
  const readable = new Map<string, { info: GgufTensorInfo; type: GgmlType; byteLength: number }>();
  for (const [hf, info] of byHfName) {
    if (!isSupportedGgmlType(info.type) || info.byteLength === null) {
      throw new ModelLoadError(`${path}: tensor ${info.name} has type ${ggmlTypeName(info.type)}, which is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)`);
    }
    readable.set(hf, { info, type: info.type, byteLength: info.byteLength });
  }
  return {
    cacheKey: cacheKeyOf(path),
    config,
    metadata: file.metadata,
    has: (name) => readable.has(name),
    tensor(name: string): Float32Array {
      const t = readable.get(name);
      if (t === undefined) throw new ModelLoadError(`${path}: no tensor ${name}`);
      return dequantize(t.type, readBytes(path, t.info.offset, t.byteLength), t.info.elements);
    },
  };
}
