import type { LlamaConfig } from '../types.js';

/**
 * Weights for a Llama-family decoder under HF tensor names, in HF layout, as fp32:
 *   model.embed_tokens.weight [V, H], model.norm.weight [H], lm_head.weight [V, H] (absent when tied),
 *   model.layers.{i}.input_layernorm.weight, model.layers.{i}.post_attention_layernorm.weight,
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight ([out, in]), model.layers.{i}.self_attn.{q,k,v}_proj.bias,
 *   model.layers.{i}.mlp.{gate,up,down}_proj.weight.
 * Sources read tensors lazily so a model is never held twice in memory.
 */
export interface WeightSource {
  /** Identity for the build cache: changes whenever the weights could have changed. */
  readonly cacheKey: string;
  readonly config: LlamaConfig;
  has(name: string): boolean;
  /** Throws ModelLoadError when the tensor is missing or its data is truncated. */
  tensor(name: string): Float32Array;
}

/**
 * The same weights with a longer context than their config claims (stories260K's GGUF says 128, it was trained on
 * 512): the graph's RoPE tables must cover it, so it is part of the build and of its cache key.
 */
export function withContextLength(source: WeightSource, contextLength: number | undefined): WeightSource {
  if (contextLength === undefined || contextLength <= source.config.maxPositions) return source;
  return {
    cacheKey: `${source.cacheKey}:ctx${contextLength}`,
    config: { ...source.config, maxPositions: contextLength },
    has: (name) => source.has(name),
    tensor: (name) => source.tensor(name),
  };
}
