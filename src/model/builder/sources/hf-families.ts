import { ModelLoadError, UnsupportedArchitectureError } from '../../../errors.js';
import type { LlamaConfig } from '../../types.js';
import { llama3Divisors, yarnRope } from '../rope.js';

type Json = Record<string, unknown>;

/** model_type values whose HF checkpoints the builder reads, and what each adds to the plain Llama decoder. */
export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma3_text', 'phi3', 'smollm3'] as const;
export type HfModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export function isSupportedModelType(t: string): t is HfModelType {
  return (SUPPORTED_MODEL_TYPES as readonly string[]).includes(t);
}

/** What the family-independent part of the parse already knows. */
export interface BaseFields {
  file: string;
  numLayers: number;
  headDim: number;
  hiddenSize: number;
  ropeTheta: number;
  maxPositions: number;
}

/** Gemma stores RMSNorm weights as w in (1 + w); the weight contract holds the multiplier itself. */
export function normWeightOffset(modelType: HfModelType): number {
  return modelType === 'gemma3_text' ? 1 : 0;
}

function num(json: Json, field: string, file: string, fallback?: number): number {
  const v = json[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ModelLoadError(`${file}: field "${field}" must be a number, got ${JSON.stringify(json[field])}`);
  }
  return v;
}

function numbers(json: Json, field: string, file: string, length: number): number[] {
  const v = json[field];
  if (!Array.isArray(v) || v.length !== length || v.some((x) => typeof x !== 'number' || !(x > 0))) {
    throw new ModelLoadError(`${file}: rope_scaling.${field} must list ${length} positive numbers`);
  }
  return v as number[];
}

/** The activation field, under either name families use. */
export function checkActivation(modelType: HfModelType, config: Json, file: string): 'silu' | 'gelu_tanh' {
  const field = 'hidden_activation' in config ? 'hidden_activation' : 'hidden_act';
  const act = config[field] ?? (modelType === 'gemma3_text' ? 'gelu_pytorch_tanh' : 'silu');
  if (act === 'silu') return 'silu';
  if (act === 'gelu_pytorch_tanh') return 'gelu_tanh';
  throw new UnsupportedArchitectureError(`${file}: ${field} "${String(act)}" is not supported (silu, gelu_pytorch_tanh)`);
}

/**
 * rope_scaling as frequency divisors (and YaRN's attention factor). Types we have not checked against a reference
 * are refused by name rather than run approximately.
 */
function ropeScaling(config: Json, b: BaseFields, ropeDim: number): Partial<LlamaConfig> {
  const scaling = config.rope_scaling as Json | null | undefined;
  if (scaling === undefined || scaling === null) return {};
  const kind = scaling.rope_type ?? scaling.type;
  const file = b.file;
  switch (kind) {
    case 'default':
      return {};
    case 'linear':
      return { ropeFreqDivisors: new Array<number>(ropeDim / 2).fill(num(scaling, 'factor', file)) };
    case 'llama3':
      return {
        ropeFreqDivisors: llama3Divisors(b.ropeTheta, ropeDim, {
          factor: num(scaling, 'factor', file),
          lowFreqFactor: num(scaling, 'low_freq_factor', file),
          highFreqFactor: num(scaling, 'high_freq_factor', file),
          originalMaxPositions: num(scaling, 'original_max_position_embeddings', file),
        }),
      };
    case 'longrope':
    case 'su': {
      // HF takes the original context from the config's top level (Phi-3) and scales attention by
      // sqrt(1 + ln(s) / ln(original)), s = max_position_embeddings / original, unless attention_factor is given.
      const original = num(config, 'original_max_position_embeddings', file, num(scaling, 'original_max_position_embeddings', file, b.maxPositions));
      const factor = b.maxPositions / original;
      const attentionFactor = scaling.attention_factor != null
        ? num(scaling, 'attention_factor', file)
        : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
      return {
        ropeFreqDivisors: numbers(scaling, 'short_factor', file, ropeDim / 2),
        ropeLongFreqDivisors: numbers(scaling, 'long_factor', file, ropeDim / 2),
        ropeOriginalMaxPositions: original,
        ropeAttentionFactor: attentionFactor,
        // Built for the original context the short factors hold exactly as in HF; a longer --context-length
        // switches to the long factors, as llama.cpp does for a context beyond the original.
        maxPositions: Math.min(b.maxPositions, original),
      };
    }
    case 'yarn': {
      // mscale/mscale_all_dim (DeepSeek's attention temperature) and untruncated ramps (gpt-oss) are other recipes.
      for (const field of ['mscale', 'mscale_all_dim']) {
        if (scaling[field] != null && scaling[field] !== 0) throw new UnsupportedArchitectureError(`${file}: rope_scaling.${field} is not supported with yarn`);
      }
      if (scaling.truncate === false) throw new UnsupportedArchitectureError(`${file}: rope_scaling.truncate false is not supported with yarn`);
      // The factor as given, as llama.cpp's converter takes it (max_position_embeddings may or may not be scaled).
      const yarn = yarnRope(b.ropeTheta, ropeDim, {
        factor: num(scaling, 'factor', file),
        originalMaxPositions: num(scaling, 'original_max_position_embeddings', file, num(config, 'original_max_position_embeddings', file, b.maxPositions)),
        betaFast: num(scaling, 'beta_fast', file, 32),
        betaSlow: num(scaling, 'beta_slow', file, 1),
        ...(scaling.attention_factor == null ? {} : { attentionFactor: num(scaling, 'attention_factor', file) }),
      });
      return { ropeFreqDivisors: yarn.divisors, ...(yarn.attentionFactor === 1 ? {} : { ropeAttentionFactor: yarn.attentionFactor }) };
    }
    case 'dynamic': {
      // Dynamic NTK rescales RoPE once a sequence outgrows the original context, which a cache of rotated keys
      // cannot follow; up to that context it is plain RoPE, so the context is capped there.
      const original = num(scaling, 'original_max_position_embeddings', file, num(config, 'original_max_position_embeddings', file, b.maxPositions));
      return { maxPositions: Math.min(b.maxPositions, original) };
    }
    default:
      throw new UnsupportedArchitectureError(
        `${file}: rope_scaling type "${String(kind)}" is not supported (supported: default, linear, llama3, longrope, yarn, dynamic)`,
      );
  }
}

function slidingWindowOf(config: Json, maxPositions: number): number | undefined {
  const w = config.sliding_window;
  return typeof w === 'number' && w > 0 && w < maxPositions ? w : undefined;
}

/** The fields a family adds on top of the plain Llama config. */
export function familyFields(modelType: HfModelType, config: Json, b: BaseFields): Partial<LlamaConfig> {
  const file = b.file;
  switch (modelType) {
    case 'llama':
    case 'mistral': {
      const window = slidingWindowOf(config, b.maxPositions);
      return { ...ropeScaling(config, b, b.headDim), ...(window === undefined ? {} : { slidingWindow: window }) };
    }
    case 'qwen2':
    case 'qwen3': {
      // Qwen's window (use_sliding_window, off in released checkpoints) covers only some layers; capping the
      // context at it keeps every layer exact without modelling which.
      const window = config.use_sliding_window === true ? slidingWindowOf(config, b.maxPositions) : undefined;
      return {
        ...ropeScaling(config, b, b.headDim),
        ...(window === undefined ? {} : { maxPositions: window }),
        ...(modelType === 'qwen3' ? { qkNorm: true } : {}),
      };
    }
    case 'smollm3': {
      const interval = num(config, 'no_rope_layer_interval', file, 4);
      const flags = Array.isArray(config.no_rope_layers)
        ? (config.no_rope_layers as unknown[])
        : Array.from({ length: b.numLayers }, (_, i) => ((i + 1) % interval !== 0 ? 1 : 0));
      if (flags.length !== b.numLayers) throw new ModelLoadError(`${file}: no_rope_layers lists ${flags.length} layers, the model has ${b.numLayers}`);
      const noRope = flags.flatMap((f, i) => (f === 0 ? [i] : []));
      return { ...ropeScaling(config, b, b.headDim), ...(noRope.length > 0 ? { noRopeLayers: noRope } : {}) };
    }
    case 'phi3': {
      const partial = num(config, 'partial_rotary_factor', file, 1);
      const ropeDim = Math.round(b.headDim * partial);
      if (ropeDim % 2 !== 0 || ropeDim <= 0 || ropeDim > b.headDim) throw new ModelLoadError(`${file}: partial_rotary_factor ${partial} gives ${ropeDim} rotary dims`);
      const window = slidingWindowOf(config, b.maxPositions);
      return {
        fusedProjections: true,
        ...(ropeDim === b.headDim ? {} : { ropeDim }),
        ...ropeScaling(config, b, ropeDim),
        ...(window === undefined ? {} : { slidingWindow: window }),
      };
    }
    case 'gemma3_text':
      return gemma3Fields(config, b);
  }
}

function gemma3Fields(config: Json, b: BaseFields): Partial<LlamaConfig> {
  const file = b.file;
  if (config.attn_logit_softcapping != null) {
    throw new UnsupportedArchitectureError(`${file}: attn_logit_softcapping is not supported (Gemma 2 style attention soft-capping)`);
  }
  let types: unknown[];
  if (Array.isArray(config.layer_types)) {
    types = config.layer_types;
  } else {
    const pattern = num(config, 'sliding_window_pattern', file, 6);
    types = Array.from({ length: b.numLayers }, (_, i) => ((i + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'));
  }
  if (types.length !== b.numLayers || types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
    throw new ModelLoadError(`${file}: layer_types must list sliding_attention/full_attention for each of the ${b.numLayers} layers`);
  }
  const window = slidingWindowOf(config, b.maxPositions);
  const sliding = types.flatMap((t, i) => (t === 'sliding_attention' ? [i] : []));
  const softcap = config.final_logit_softcapping;
  return {
    ...ropeScaling(config, b, b.headDim),
    qkNorm: true,
    sandwichNorms: true,
    embeddingScale: Math.sqrt(b.hiddenSize),
    attentionScale: 1 / Math.sqrt(num(config, 'query_pre_attn_scalar', file, b.headDim)),
    slidingRopeTheta: num(config, 'rope_local_base_freq', file, 10000),
    // The local layers keep their own RoPE base even where the window covers the whole context.
    slidingLayers: sliding,
    ...(window === undefined ? {} : { slidingWindow: window }),
    ...(typeof softcap === 'number' && softcap > 0 ? { finalLogitSoftcap: softcap } : {}),
  };
}
