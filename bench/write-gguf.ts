/**
 * An HF Llama checkpoint (config.json + safetensors + tokenizer.json) as a GGUF that llama.cpp loads (F32, or the
 * linear layers as Q8_0/Q4_0/Q4_K), so the peer and agreement benches can run both engines on the same weights. Tensors go through the test GGUF writer; the byte-level BPE
 * tokenizer becomes GGUF's "gpt2" vocabulary with its merges, special tokens and chat template.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readHfConfig } from '../src/model/builder/sources/hf-config.js';
import { openHfDir } from '../src/model/builder/sources/hf-dir.js';
import { GgufValueType, kv, type GgufValue } from '../test/unit/gguf-writer.js';
import type { LlamaConfig } from '../src/model/types.js';
import { ggufTypeFits, writeModelGguf, type GgufWeightType } from '../test/unit/gguf-model-writer.js';
import { BenchError } from './errors.js';

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
  pre_tokenizer: { type: string; use_regex?: boolean } | null;
}

function bpeMetadata(dir: string, eos: number[], bos: number | null): Record<string, GgufValue> {
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  if (tok.model.type !== 'BPE' || tok.pre_tokenizer?.type !== 'ByteLevel' || tok.pre_tokenizer.use_regex === false) {
    throw new BenchError(`${dir}: only byte-level BPE tokenizers with the GPT-2 pre-tokenizer are converted`);
  }
  const tokens: string[] = [];
  for (const [piece, id] of Object.entries(tok.model.vocab)) tokens[id] = piece;
  for (const t of tok.added_tokens) tokens[t.id] = t.content;
  const special = new Set(tok.added_tokens.filter((t) => t.special).map((t) => t.id));
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: string };
  return {
    'general.name': kv.str(dir.split('/').filter(Boolean).pop()!),
    'tokenizer.ggml.model': kv.str('gpt2'),
    'tokenizer.ggml.pre': kv.str('gpt-2'),
    'tokenizer.ggml.tokens': kv.strs(tokens),
    'tokenizer.ggml.token_type': kv.i32s(tokens.map((_, id) => (special.has(id) ? 3 : 1))),
    'tokenizer.ggml.merges': kv.strs(tok.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' ')))),
    'tokenizer.ggml.eos_token_id': kv.u32(eos[0]),
    ...(bos === null ? {} : { 'tokenizer.ggml.bos_token_id': kv.u32(bos) }),
    'tokenizer.ggml.add_bos_token': { type: GgufValueType.BOOL, value: bos !== null },
    ...(config.chat_template ? { 'tokenizer.chat_template': kv.str(config.chat_template) } : {}),
  };
}

/** Input sizes of the matrices write-gguf quantizes: q/k/v/gate/up and the head take hidden, o the heads, down the MLP. */
export function linearColumns(c: LlamaConfig): number[] {
  return [c.hiddenSize, c.numHeads * c.headDim, c.intermediateSize];
}

export const GGUF_WEIGHT_TYPES: readonly GgufWeightType[] = ['F32', 'Q8_0', 'Q4_0', 'Q4_K'];

/** Writes `out` from the HF directory `dir`; plain Llama checkpoints only (what chat-llama-5m is). */
export function writeGgufFromHf(dir: string, out: string, type: GgufWeightType = 'F32'): void {
  const source = openHfDir(dir);
  const c = source.config;
  const { modelType } = readHfConfig(dir);
  if (modelType !== 'llama' || c.ropeFreqDivisors || c.slidingWindow || c.attentionBias) {
    throw new BenchError(`${dir}: write-gguf converts plain Llama checkpoints only (model_type ${modelType})`);
  }
  if (c.eosTokenIds.length === 0) throw new BenchError(`${dir}: no eos_token_id`);
  if (!ggufTypeFits(type, linearColumns(c))) throw new BenchError(`${dir}: ${type} needs every linear layer's input size to be a multiple of its block (sizes ${linearColumns(c).join(', ')})`);
  writeModelGguf(out, 'llama', source, bpeMetadata(dir, c.eosTokenIds, c.bosTokenId), type);
}
