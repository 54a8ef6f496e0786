/**
 * GGUF tokenizer metadata for tests: a Hugging Face tokenizer.json turned into `tokenizer.ggml.*` keys the way
 * llama.cpp's convert_hf_to_gguf.py does, and vocabulary-only GGUF files (a llama architecture header, no tensors)
 * that llama.cpp loads with `vocabOnly` to tokenize.
 */
import { GgufValueType, kv, writeGguf, type GgufValue } from './gguf-writer.js';

type Json = Record<string, unknown>;

/** llama.cpp's token types. */
const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;

export interface BpeVocabOptions {
  /** `tokenizer.ggml.pre`: the pre-tokenizer name llama.cpp knows (llama-bpe, qwen2, smollm, gpt-2, ...). */
  pre: string;
  /** Pad the vocabulary with unused [PAD<i>] tokens to this size, as checkpoints with padded embeddings do. */
  vocabSize?: number;
  addBos?: boolean;
  chatTemplate?: string;
}

/** As convert_hf_to_gguf.py's does_token_look_special: added tokens written like <|x|> are control tokens. */
function looksSpecial(token: string): boolean {
  return (token.startsWith('<|') && token.endsWith('|>')) || (token.startsWith('<｜') && token.endsWith('｜>'));
}

/** The tokenizer.ggml.* metadata of a byte-level BPE tokenizer.json; bos/eos from tokenizer_config.json. */
export function bpeVocabMetadata(tokenizer: Json, config: Json, options: BpeVocabOptions): Record<string, GgufValue> {
  const model = tokenizer.model as { vocab: Record<string, number>; merges: (string | [string, string])[] };
  const added = tokenizer.added_tokens as { id: number; content: string; special: boolean }[];
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(model.vocab)) byId.set(id, token);
  const addedById = new Map(added.map((a) => [a.id, a]));
  for (const a of added) byId.set(a.id, a.content);
  let size = options.vocabSize ?? 0;
  for (const id of byId.keys()) size = Math.max(size, id + 1);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < size; id++) {
    const token = byId.get(id);
    const a = addedById.get(id);
    tokens.push(token ?? `[PAD${id}]`);
    types.push(token === undefined ? UNUSED : a === undefined ? NORMAL : a.special || looksSpecial(a.content) ? CONTROL : USER_DEFINED);
  }
  const idOf = (value: unknown): number | undefined => {
    const text = typeof value === 'string' ? value : (value as Json | null)?.content;
    return typeof text === 'string' ? tokens.indexOf(text) : undefined;
  };
  const meta: Record<string, GgufValue> = {
    'tokenizer.ggml.model': kv.str('gpt2'),
    'tokenizer.ggml.pre': kv.str(options.pre),
    'tokenizer.ggml.tokens': kv.strs(tokens),
    'tokenizer.ggml.token_type': kv.i32s(types),
    'tokenizer.ggml.merges': kv.strs(model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m))),
  };
  const bos = idOf(config.bos_token);
  const eos = idOf(config.eos_token);
  if (bos !== undefined && bos >= 0) meta['tokenizer.ggml.bos_token_id'] = kv.u32(bos);
  if (eos !== undefined && eos >= 0) meta['tokenizer.ggml.eos_token_id'] = kv.u32(eos);
  if (options.addBos !== undefined) meta['tokenizer.ggml.add_bos_token'] = { type: GgufValueType.BOOL, value: options.addBos };
  if (options.chatTemplate !== undefined) meta['tokenizer.chat_template'] = kv.str(options.chatTemplate);
  return meta;
}

/**
 * A SentencePiece vocabulary's tokenizer metadata as read from a GGUF, with control tokens appended (a chat
 * format's markers that the original vocabulary lacks).
 */
export function spmVocabWithControls(meta: Map<string, unknown>, controls: string[]): Record<string, GgufValue> {
  const tokens = [...(meta.get('tokenizer.ggml.tokens') as string[]), ...controls];
  const id = (key: string): Record<string, GgufValue> => (typeof meta.get(key) === 'number' ? { [key]: kv.u32(meta.get(key) as number) } : {});
  return {
    'tokenizer.ggml.model': kv.str('llama'),
    'tokenizer.ggml.tokens': kv.strs(tokens),
    'tokenizer.ggml.scores': kv.f32s([...Array.from(meta.get('tokenizer.ggml.scores') as Float32Array), ...controls.map(() => 0)]),
    'tokenizer.ggml.token_type': kv.i32s([...Array.from(meta.get('tokenizer.ggml.token_type') as Int32Array), ...controls.map(() => CONTROL)]),
    ...id('tokenizer.ggml.bos_token_id'),
    ...id('tokenizer.ggml.eos_token_id'),
    ...id('tokenizer.ggml.unknown_token_id'),
  };
}

/**
 * A GGUF with a tiny llama architecture header and the given tokenizer metadata, no tensors. `name` is
 * general.name, which llama.cpp reads for model-specific tokenizer rules (Phi-3's whitespace stripping).
 */
export function writeVocabOnlyGguf(path: string, tokenizer: Record<string, GgufValue>, name = 'vocab-only test model'): void {
  writeGguf(path, {
    metadata: {
      'general.architecture': kv.str('llama'),
      'general.name': kv.str(name),
      'llama.context_length': kv.u32(256),
      'llama.embedding_length': kv.u32(8),
      'llama.block_count': kv.u32(1),
      'llama.feed_forward_length': kv.u32(16),
      'llama.attention.head_count': kv.u32(2),
      'llama.attention.head_count_kv': kv.u32(2),
      'llama.attention.layer_norm_rms_epsilon': kv.f32(1e-5),
      'llama.rope.dimension_count': kv.u32(4),
      ...tokenizer,
    },
    tensors: [],
  });
}
