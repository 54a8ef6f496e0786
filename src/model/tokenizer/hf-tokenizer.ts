/**
 * A Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json, optionally generation_config.json and
 * config.json for special ids) behind the TextTokenizer contract, via @huggingface/tokenizers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelLoadError } from '../../errors.js';
import { ChatTemplate } from './chat-template.js';
import type { ChatMessage, ChatRenderOptions, TextTokenizer } from './types.js';

type Json = Record<string, unknown>;

export function loadHfTokenizer(dir: string): TextTokenizer {
  const tokenizerJson = readJson(dir, 'tokenizer.json', true)!;
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json', true)!;
  const generationConfig = readJson(dir, 'generation_config.json', false);
  const modelConfig = readJson(dir, 'config.json', false);

  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (err) {
    throw new ModelLoadError(`${join(dir, 'tokenizer.json')}: unsupported or corrupt tokenizer: ${(err as Error).message}`, {
      cause: err,
    });
  }

  const bosToken = tokenString(tokenizerConfig.bos_token);
  const eosToken = tokenString(tokenizerConfig.eos_token);
  const bosTokenId = bosToken === null ? null : (tokenizer.token_to_id(bosToken) ?? null);

  const eos = new Set<number>();
  for (const config of [generationConfig, modelConfig]) {
    for (const id of idList(config?.eos_token_id)) eos.add(id);
  }
  const eosFromToken = eosToken === null ? undefined : tokenizer.token_to_id(eosToken);
  if (eosFromToken !== undefined) eos.add(eosFromToken);

  let vocabSize = 0;
  for (const id of tokenizer.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);

  const template = typeof tokenizerConfig.chat_template === 'string' ? tokenizerConfig.chat_template : null;
  const vocab = new TokenVocab(tokenizer, tokenizerJson, vocabSize);
  return new HfTokenizer(tokenizer, vocabSize, bosTokenId, [...eos], new ChatTemplate({ template, bosToken, eosToken }), vocab);
}

class HfTokenizer implements TextTokenizer {
  readonly chatTemplateAddsBos: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly vocabSize: number,
    readonly bosTokenId: number | null,
    readonly eosTokenIds: readonly number[],
    private readonly chat: ChatTemplate,
    private readonly vocab: TokenVocab,
  ) {
    this.chatTemplateAddsBos = chat.addsBos;
  }

  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options?.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string {
    // Models often pad their logits past the tokenizer's vocabulary; such ids have no text.
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= 0 && ids[i] < this.vocabSize) known.push(ids[i]);
    }
    // The library throws on an empty list.
    if (known.length === 0) return '';
    return this.tokenizer.decode(known, { skip_special_tokens: options?.skipSpecialTokens ?? false });
  }

  get chatTemplateTakesTools(): boolean {
    return this.chat.takesTools;
  }

  get chatTemplateThinks(): boolean {
    return this.chat.thinks;
  }

  renderChat(messages: ChatMessage[], options?: ChatRenderOptions): string {
    return this.chat.render(messages, options);
  }

  tokenBytes(id: number): Uint8Array | null {
    return this.vocab.bytes(id);
  }
}

/**
 * Each token's raw bytes, from its vocabulary string and the decoder tokenizer.json names: byte-level BPE writes bytes
 * as GPT-2's printable stand-ins, SentencePiece-style vocabularies write spaces as ▁ and bytes as <0xNN>. Built on
 * first use (only structured outputs need it).
 */
class TokenVocab {
  private table: (Uint8Array | null)[] | null = null;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly json: Json,
    private readonly size: number,
  ) {}

  bytes(id: number): Uint8Array | null {
    this.table ??= this.build();
    return this.table[id] ?? null;
  }

  private build(): (Uint8Array | null)[] {
    const table: (Uint8Array | null)[] = new Array(this.size).fill(null);
    const special = new Set<number>();
    for (const t of Array.isArray(this.json.added_tokens) ? (this.json.added_tokens as Json[]) : []) {
      if (t.special === true && typeof t.id === 'number') special.add(t.id);
    }
    const decoders = decoderTypes(this.json.decoder);
    const utf8 = new TextEncoder();
    const toBytes = decoders.has('ByteLevel')
      ? byteLevelBytes
      : decoders.has('ByteFallback') || decoders.has('Metaspace')
        ? (piece: string) => pieceBytes(piece, utf8)
        : (piece: string) => utf8.encode(piece);
    for (const [piece, id] of this.tokenizer.get_vocab(true)) {
      if (id >= 0 && id < this.size && !special.has(id)) table[id] = toBytes(piece);
    }
    return table;
  }
}

function decoderTypes(decoder: unknown): Set<string> {
  const types = new Set<string>();
  const visit = (d: unknown) => {
    if (d === null || typeof d !== 'object') return;
    const { type, decoders } = d as Json;
    if (typeof type === 'string') types.add(type);
    if (Array.isArray(decoders)) decoders.forEach(visit);
  };
  visit(decoder);
  return types;
}

/** GPT-2's byte ↔ printable character table, inverted: printable bytes stand for themselves, the rest for 256 + n. */
const BYTE_OF_CHAR = (() => {
  const map = new Map<number, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map.set(printable ? b : 256 + extra++, b);
  }
  return map;
})();

function byteLevelBytes(piece: string): Uint8Array {
  const out = new Uint8Array(piece.length);
  let n = 0;
  for (const ch of piece) {
    const b = BYTE_OF_CHAR.get(ch.codePointAt(0)!);
    // A character outside the table (an added, non-special token) stands for its own UTF-8.
    if (b === undefined) return new TextEncoder().encode(piece);
    out[n++] = b;
  }
  return out.subarray(0, n);
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

function pieceBytes(piece: string, utf8: { encode(text: string): Uint8Array }): Uint8Array {
  const byte = BYTE_PIECE.exec(piece);
  return byte ? Uint8Array.of(parseInt(byte[1], 16)) : utf8.encode(piece.replaceAll('▁', ' '));
}

function readJson(dir: string, name: string, required: boolean): Json | null {
  const path = join(dir, name);
  if (!existsSync(path)) {
    if (required) throw new ModelLoadError(`${path}: file not found`);
    return null;
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelLoadError(`${path}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ModelLoadError(`${path}: expected a JSON object`);
  }
  return value as Json;
}

/** tokenizer_config.json writes special tokens either as strings or as AddedToken objects ({content: ...}). */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  return null;
}

function idList(value: unknown): number[] {
  if (Number.isInteger(value)) return [value as number];
  if (Array.isArray(value)) return value.filter((v): v is number => Number.isInteger(v));
  return [];
}
