/**
 * An HF checkpoint of any family the builder reads (config.json + safetensors + tokenizer.json) as a GGUF that
 * llama.cpp loads (F32, or the linear layers as Q8_0/Q4_0/Q4_K), so the peer and agreement benches can run both
 * engines on the same weights. Tensors go through the test GGUF writer with each family's metadata; the byte-level
 * BPE tokenizer becomes GGUF's "gpt2" vocabulary with its merges, special tokens and chat template.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readHfConfig } from '../src/model/builder/sources/hf-config.js';
import { openHfDir } from '../src/model/builder/sources/hf-dir.js';
import { GgufValueType, kv, type GgufValue } from '../test/unit/gguf-writer.js';
import type { LlamaConfig } from '../src/model/types.js';
import { familyMetadata, ggufTypeFits, writeModelGguf, type GgufWeightType } from '../test/unit/gguf-model-writer.js';
import type { HfModelType } from '../src/model/builder/sources/hf-families.js';
import type { YarnScaling } from '../src/model/builder/rope.js';
import { BenchError } from './errors.js';

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
  pre_tokenizer: { type: string; use_regex?: boolean; pretokenizers?: { type: string; pattern?: { Regex?: string } }[] } | null;
}

/**
 * llama.cpp's name for the word splitting of a byte-level BPE: GPT-2's own regex, or a Split regex before a
 * ByteLevel that does not split again (Llama 3's groups digits by three, Qwen2's splits every digit).
 */
function preTokenizerName(dir: string, pre: TokenizerJson['pre_tokenizer']): string {
  if (pre?.type === 'ByteLevel' && pre.use_regex !== false) return 'gpt-2';
  const parts = pre?.type === 'Sequence' ? (pre.pretokenizers ?? []) : [];
  const regex = parts.length === 2 && parts[0].type === 'Split' && parts[1].type === 'ByteLevel' ? parts[0].pattern?.Regex : undefined;
  if (regex?.includes('\\p{N}{1,3}')) return 'llama-bpe';
  if (regex?.includes('\\p{N}|')) return 'qwen2';
  throw new BenchError(`${dir}: only byte-level BPE tokenizers with the GPT-2, Llama 3 or Qwen2 word splitting are converted`);
}

function bpeMetadata(dir: string, vocabSize: number, eos: number[], bos: number | null): Record<string, GgufValue> {
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  if (tok.model.type !== 'BPE') throw new BenchError(`${dir}: only byte-level BPE tokenizers are converted (got ${tok.model.type})`);
  const pre = preTokenizerName(dir, tok.pre_tokenizer);
  // Ids the tokenizer leaves unused up to the embedding's rows get placeholders, as llama.cpp's converter writes them.
  const tokens = Array.from({ length: vocabSize }, (_, id) => `[PAD${id}]`);
  const known = new Set<number>();
  for (const [piece, id] of Object.entries(tok.model.vocab)) (tokens[id] = piece), known.add(id);
  for (const t of tok.added_tokens) (tokens[t.id] = t.content), known.add(t.id);
  const special = new Set(tok.added_tokens.filter((t) => t.special).map((t) => t.id));
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: string };
  return {
    'tokenizer.ggml.model': kv.str('gpt2'),
    'tokenizer.ggml.pre': kv.str(pre),
    'tokenizer.ggml.tokens': kv.strs(tokens),
    // 3 = control, 5 = unused, 1 = normal.
    'tokenizer.ggml.token_type': kv.i32s(tokens.map((_, id) => (special.has(id) ? 3 : known.has(id) ? 1 : 5))),
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

/** The GGUF architecture llama.cpp runs each model_type as. */
const ARCH_OF: Record<HfModelType, string> = {
  llama: 'llama', mistral: 'llama', qwen2: 'qwen2', qwen3: 'qwen3', gemma3_text: 'gemma3', phi3: 'phi3', smollm3: 'smollm3',
};

/** The YaRN settings of a config.json (factor and original context, as llama.cpp's converter writes them). */
function yarnOf(dir: string): YarnScaling | undefined {
  const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { rope_scaling?: Record<string, unknown> | null; max_position_embeddings: number };
  const s = json.rope_scaling;
  if (!s || (s.rope_type ?? s.type) !== 'yarn') return undefined;
  if (s.beta_fast != null || s.beta_slow != null || s.attention_factor != null) throw new BenchError(`${dir}: YaRN with beta_fast/beta_slow/attention_factor is not converted`);
  return { factor: s.factor as number, originalMaxPositions: (s.original_max_position_embeddings as number | undefined) ?? json.max_position_embeddings };
}

/** Writes `out` from the HF directory `dir`, any family the builder reads. */
export function writeGgufFromHf(dir: string, out: string, type: GgufWeightType = 'F32'): void {
  const source = openHfDir(dir);
  const c = source.config;
  const { modelType } = readHfConfig(dir);
  if (c.eosTokenIds.length === 0) throw new BenchError(`${dir}: no eos_token_id`);
  if (!ggufTypeFits(type, linearColumns(c))) throw new BenchError(`${dir}: ${type} needs every linear layer's input size to be a multiple of its block (sizes ${linearColumns(c).join(', ')})`);
  const ggufArch = ARCH_OF[modelType];
  const family = familyMetadata({ ggufArch, config: c, yarn: yarnOf(dir) });
  writeModelGguf(out, ggufArch, source, { ...family, ...bpeMetadata(dir, c.vocabSize, c.eosTokenIds, c.bosTokenId) }, type);
}
