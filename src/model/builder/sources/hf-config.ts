import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError, UnsupportedArchitectureError } from '../../../errors.js';
import type { LlamaConfig } from '../../types.js';
import { checkActivation, familyFields, isSupportedModelType, SUPPORTED_MODEL_TYPES, type HfModelType } from './hf-families.js';

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ModelLoadError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ModelLoadError(`${path} must hold a JSON object`);
  }
  return value as Json;
}

function positiveInt(json: Json, field: string, file: string): number {
  const v = json[field];
  if (v === undefined || v === null) throw new ModelLoadError(`${file}: missing field "${field}"`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new ModelLoadError(`${file}: field "${field}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function optionalNumber(json: Json, field: string, file: string, fallback: number): number {
  const v = json[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ModelLoadError(`${file}: field "${field}" must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function tokenIds(value: unknown, field: string, file: string): number[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new ModelLoadError(`${file}: field "${field}" must be a token id or a list of them, got ${JSON.stringify(value)}`);
    }
  }
  return list as number[];
}

/**
 * Turns an HF config.json (and optionally generation_config.json) into a LlamaConfig.
 * `file` names the config in error messages.
 */
export function parseHfConfig(config: Json, generation: Json | null = null, file = 'config.json'): LlamaConfig {
  const modelType = config.model_type;
  if (typeof modelType !== 'string') throw new ModelLoadError(`${file}: missing field "model_type"`);
  if (!isSupportedModelType(modelType)) {
    const hint = modelType === 'gemma3' ? ' (the multimodal Gemma 3 checkpoint; its text decoder alone, model_type gemma3_text, is supported)' : '';
    throw new UnsupportedArchitectureError(
      `${file}: model_type "${modelType}" is not supported${hint} (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
    );
  }
  const hiddenAct = checkActivation(modelType, config, file);
  if (config.mlp_bias === true) throw new UnsupportedArchitectureError(`${file}: mlp_bias true is not supported`);

  const hiddenSize = positiveInt(config, 'hidden_size', file);
  const numHeads = positiveInt(config, 'num_attention_heads', file);
  const numKvHeads = config.num_key_value_heads == null ? numHeads : positiveInt(config, 'num_key_value_heads', file);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLoadError(`${file}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  let headDim: number;
  if (config.head_dim != null) {
    headDim = positiveInt(config, 'head_dim', file);
  } else {
    if (hiddenSize % numHeads !== 0) {
      throw new ModelLoadError(`${file}: hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads} and head_dim is absent`);
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) throw new ModelLoadError(`${file}: head_dim ${headDim} must be even for RoPE`);

  const maxPositions = positiveInt(config, 'max_position_embeddings', file);
  const ropeTheta = optionalNumber(config, 'rope_theta', file, modelType === 'gemma3_text' ? 1e6 : 10000);
  const numLayers = positiveInt(config, 'num_hidden_layers', file);
  const family = familyFields(modelType, config, { file, numLayers, headDim, hiddenSize, ropeTheta, maxPositions });
  const attentionBias = typeof config.attention_bias === 'boolean' ? config.attention_bias : modelType === 'qwen2';
  // Gemma ties its head to the embedding unless told otherwise; the others do not.
  const tiedEmbeddings = typeof config.tie_word_embeddings === 'boolean' ? config.tie_word_embeddings : modelType === 'gemma3_text';

  const fromGeneration = (field: string): unknown =>
    generation !== null && field in generation ? generation[field] : config[field];
  const bos = tokenIds(fromGeneration('bos_token_id'), 'bos_token_id', file);
  const eosTokenIds = tokenIds(fromGeneration('eos_token_id'), 'eos_token_id', file);

  return {
    vocabSize: positiveInt(config, 'vocab_size', file),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: positiveInt(config, 'intermediate_size', file),
    // HF's LlamaConfig / MistralConfig / Qwen2Config defaults.
    rmsNormEps: optionalNumber(config, 'rms_norm_eps', file, 1e-6),
    ropeTheta,
    ropeStyle: 'half',
    tiedEmbeddings,
    attentionBias,
    maxPositions,
    bosTokenId: bos.length > 0 ? bos[0] : null,
    eosTokenIds,
    ...(hiddenAct === 'silu' ? {} : { hiddenAct }),
    ...family,
  };
}

/** Reads `dir/config.json` and, when present, `dir/generation_config.json`. */
export function readHfConfig(dir: string): { config: LlamaConfig; modelType: HfModelType } {
  const configPath = join(dir, 'config.json');
  const generationPath = join(dir, 'generation_config.json');
  const generation = existsSync(generationPath) ? readJson(generationPath) : null;
  const json = readJson(configPath);
  const config = parseHfConfig(json, generation, configPath);
  return { config, modelType: json.model_type as HfModelType };
}

/** Every tensor the contract (builder/source.ts) expects for `config`, with its HF shape. */
export function hfTensorShapes(config: LlamaConfig): Map<string, number[]> {
  const { hiddenSize: h, vocabSize: v, headDim: d, numHeads, numKvHeads, intermediateSize: f } = config;
  const shapes = new Map<string, number[]>([
    ['model.embed_tokens.weight', [v, h]],
    ['model.norm.weight', [h]],
  ]);
  if (!config.tiedEmbeddings) shapes.set('lm_head.weight', [v, h]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [h]);
    shapes.set(`${p}post_attention_layernorm.weight`, [h]);
    if (config.sandwichNorms) {
      shapes.set(`${p}pre_feedforward_layernorm.weight`, [h]);
      shapes.set(`${p}post_feedforward_layernorm.weight`, [h]);
    }
    if (config.fusedProjections) {
      shapes.set(`${p}self_attn.qkv_proj.weight`, [(numHeads + 2 * numKvHeads) * d, h]);
    } else {
      shapes.set(`${p}self_attn.q_proj.weight`, [numHeads * d, h]);
      shapes.set(`${p}self_attn.k_proj.weight`, [numKvHeads * d, h]);
      shapes.set(`${p}self_attn.v_proj.weight`, [numKvHeads * d, h]);
    }
    shapes.set(`${p}self_attn.o_proj.weight`, [h, numHeads * d]);
    if (config.attentionBias) {
      shapes.set(`${p}self_attn.q_proj.bias`, [numHeads * d]);
      shapes.set(`${p}self_attn.k_proj.bias`, [numKvHeads * d]);
      shapes.set(`${p}self_attn.v_proj.bias`, [numKvHeads * d]);
    }
    if (config.qkNorm) {
      shapes.set(`${p}self_attn.q_norm.weight`, [d]);
      shapes.set(`${p}self_attn.k_norm.weight`, [d]);
    }
    if (config.fusedProjections) {
      shapes.set(`${p}mlp.gate_up_proj.weight`, [2 * f, h]);
    } else {
      shapes.set(`${p}mlp.gate_proj.weight`, [f, h]);
      shapes.set(`${p}mlp.up_proj.weight`, [f, h]);
    }
    shapes.set(`${p}mlp.down_proj.weight`, [h, f]);
  }
  return shapes;
}

/**
 * Checks that a weight file set holds every expected tensor with the expected shape.
 * `shapeOf` returns the stored shape (outermost first) or undefined when the tensor is absent.
 */
export function checkTensorShapes(config: LlamaConfig, shapeOf: (name: string) => readonly number[] | undefined, where: string): void {
  const missing: string[] = [];
  for (const [name, expected] of hfTensorShapes(config)) {
    const actual = shapeOf(name);
    if (actual === undefined) {
      missing.push(name);
    } else if (actual.length !== expected.length || actual.some((n, i) => n !== expected[i])) {
      throw new ModelLoadError(`${where}: tensor ${name} has shape [${actual.join(', ')}], the config implies [${expected.join(', ')}]`);
    }
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, … (${missing.length} in all)` : '');
    throw new ModelLoadError(`${where}: missing tensors ${shown}`);
  }
}
