/**
 * What every tokenizer embedded in a GGUF shares, whatever its merge algorithm: the token list and types, BOS/EOS
 * and end-of-generation ids, control tokens matched verbatim in text, decoding through per-token bytes, and the
 * chat template (`tokenizer.chat_template`). Follows llama.cpp's llama-vocab.cpp.
 */
import { ModelLoadError } from '../../errors.js';
import { ChatTemplate } from './chat-template.js';
import type { ChatMessage, ChatRenderOptions, TextTokenizer } from './types.js';

/** llama.cpp's token types (tokenizer.ggml.token_type). */
export const enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * Token texts llama.cpp treats as ending generation whatever the metadata says (its llama-vocab.cpp list): chat
 * models' end-of-turn tokens, which GGUFs often leave out of eos/eot ids.
 */
const END_OF_GENERATION_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|eom_id|>', '<EOT>', '<|end_of_text|>', '</s>', '<eos>',
]);

const PHI3_UNSTRIPPED = new Set(['<unk>', '<s>', '<|endoftext|>']);
/** C's isspace, which llama.cpp strips with. */
const ASCII_SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

export function metaString(meta: Map<string, unknown>, key: string): string | null {
  const v = meta.get(key);
  return typeof v === 'string' ? v : null;
}

export function metaId(meta: Map<string, unknown>, key: string, vocabSize: number): number | null {
  const v = meta.get(key);
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < vocabSize ? v : null;
}

export function metaBool(meta: Map<string, unknown>, key: string, fallback: boolean): boolean {
  const v = meta.get(key);
  return typeof v === 'boolean' ? v : fallback;
}

export function numericArray(meta: Map<string, unknown>, key: string, length: number): ArrayLike<number> | null {
  const v = meta.get(key);
  if (v === undefined) return null;
  if ((!ArrayBuffer.isView(v) && !Array.isArray(v)) || (v as ArrayLike<number>).length !== length) {
    throw new ModelLoadError(`GGUF metadata ${key} must be a numeric array of ${length} entries`);
  }
  return v as unknown as ArrayLike<number>;
}

export function stringArray(meta: Map<string, unknown>, key: string): string[] | null {
  const v = meta.get(key);
  if (v === undefined) return null;
  if (!Array.isArray(v) || !v.every((t) => typeof t === 'string')) {
    throw new ModelLoadError(`GGUF metadata ${key} must be a list of strings`);
  }
  return v as string[];
}

export abstract class GgufTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly chatTemplateAddsBos: boolean;
  protected readonly pieces: string[];
  protected readonly types: Int32Array;
  protected readonly pieceToId = new Map<string, number>();
  protected readonly utf8 = new TextEncoder();
  /** UTF-8 bytes of the tokens decoded so far: worked out on first use, most of a vocabulary never is. */
  private readonly bytesCache: (Uint8Array | undefined)[] = [];
  /** Control, user-defined and unknown tokens by first character: matched verbatim in text. */
  private readonly specialPieces = new Map<string, { text: string; id: number }[]>();
  /** Special tokens that swallow the whitespace after them (llama.cpp's RSTRIP attribute). */
  private readonly stripsAfter = new Set<number>();
  private readonly addBos: boolean;
  private readonly chat: ChatTemplate;
  private readonly textDecoder = new TextDecoder();

  constructor(meta: Map<string, unknown>, addBosDefault: boolean) {
    const pieces = stringArray(meta, 'tokenizer.ggml.tokens');
    if (pieces === null || pieces.length === 0) {
      throw new ModelLoadError('GGUF metadata tokenizer.ggml.tokens is missing or not a list of strings');
    }
    this.pieces = pieces;
    this.vocabSize = pieces.length;
    const types = numericArray(meta, 'tokenizer.ggml.token_type', pieces.length);
    this.types = types !== null ? Int32Array.from(types) : Int32Array.from(pieces, (p) => (BYTE_PIECE.test(p) ? TokenType.Byte : TokenType.Normal));

    const endOfGeneration = new Set<number>();
    pieces.forEach((piece, id) => {
      // The first id wins for duplicate pieces, as in llama.cpp's token_to_id.
      if (!this.pieceToId.has(piece)) this.pieceToId.set(piece, id);
      if (END_OF_GENERATION_TEXTS.has(piece)) {
        endOfGeneration.add(id);
        // llama.cpp turns such tokens into control tokens even where the file typed them otherwise.
        this.types[id] = TokenType.Control;
      }
      const type = this.types[id];
      if ((type === TokenType.Control || type === TokenType.UserDefined || type === TokenType.Unknown) && piece.length > 0) {
        const list = this.specialPieces.get(piece[0]) ?? [];
        list.push({ text: piece, id });
        this.specialPieces.set(piece[0], list);
      }
    });
    // llama.cpp recognises Phi-3 by name and strips whitespace after its special tokens, as its tokenizer.json does.
    if (/phi-?3/.test((metaString(meta, 'general.name') ?? '').toLowerCase())) {
      for (const list of this.specialPieces.values()) for (const { text, id } of list) if (!PHI3_UNSTRIPPED.has(text)) this.stripsAfter.add(id);
    }

    this.bosTokenId = metaId(meta, 'tokenizer.ggml.bos_token_id', this.vocabSize);
    const eos = metaId(meta, 'tokenizer.ggml.eos_token_id', this.vocabSize);
    const declared = ['eos', 'eot', 'eom'].map((k) => metaId(meta, `tokenizer.ggml.${k}_token_id`, this.vocabSize));
    this.eosTokenIds = [...new Set([...declared.filter((id): id is number => id !== null), ...endOfGeneration])];
    this.addBos = metaBool(meta, 'tokenizer.ggml.add_bos_token', addBosDefault) && this.bosTokenId !== null;

    this.chat = new ChatTemplate({
      template: metaString(meta, 'tokenizer.chat_template'),
      bosToken: this.bosTokenId === null ? null : pieces[this.bosTokenId],
      eosToken: eos === null ? null : pieces[eos],
    });
    this.chatTemplateAddsBos = this.chat.addsBos;
  }

  /** The UTF-8 bytes a token other than a byte token decodes to: the subclass knows how its pieces spell text. */
  protected abstract textBytes(id: number): Uint8Array;

  private bytesOfToken(id: number): Uint8Array {
    // Unused slots (padding rows such as Qwen's [PAD151700]) have no text, as in llama.cpp.
    if (this.types[id] === TokenType.Unused) return new Uint8Array(0);
    const byte = this.types[id] === TokenType.Byte ? BYTE_PIECE.exec(this.pieces[id]) : null;
    return byte !== null ? Uint8Array.of(parseInt(byte[1], 16)) : this.textBytes(id);
  }

  /** Appends the ids of text that holds no special token; `afterSpecial` is true at the start and after one. */
  protected abstract encodeText(text: string, afterSpecial: boolean, out: number[]): void;

  /** Whether the space a token starts with is dropped at the start of a decode (SentencePiece's dummy prefix). */
  protected dropsLeadingSpace(_id: number): boolean {
    return false;
  }

  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    const out: number[] = [];
    if ((options?.addSpecialTokens ?? true) && this.addBos) out.push(this.bosTokenId!);
    let afterSpecial = true;
    for (const part of this.splitSpecial(text)) {
      if (typeof part === 'number') {
        out.push(part);
        afterSpecial = true;
      } else {
        this.encodeText(part, afterSpecial, out);
        afterSpecial = false;
      }
    }
    return out;
  }

  /**
   * Text pieces and special-token ids in order; empty text yields nothing. As llama.cpp partitions: the longest
   * special token first over the whole text, leftmost first, then the next longest in the text left between, and so
   * on. Equivalently: every occurrence of every special token, taken by length (then id), then position, unless it
   * overlaps one already taken.
   */
  private splitSpecial(text: string): (string | number)[] {
    const found: { start: number; end: number; id: number }[] = [];
    for (let i = 0; i < text.length; i++) {
      for (const special of this.specialPieces.get(text[i]) ?? []) {
        if (text.startsWith(special.text, i)) found.push({ start: i, end: i + special.text.length, id: special.id });
      }
    }
    if (found.length === 0) return text.length > 0 ? [text] : [];
    found.sort((a, b) => b.end - b.start - (a.end - a.start) || a.id - b.id || a.start - b.start);
    const covered = new Uint8Array(text.length);
    const taken = found.filter((f) => {
      if (covered.subarray(f.start, f.end).includes(1)) return false;
      covered.fill(1, f.start, f.end);
      return true;
    });
    taken.sort((a, b) => a.start - b.start);

    const parts: (string | number)[] = [];
    let start = 0;
    for (const t of taken) {
      if (t.start > start) parts.push(text.slice(start, t.start));
      parts.push(t.id);
      start = t.end;
      if (this.stripsAfter.has(t.id)) while (start < text.length && covered[start] === 0 && ASCII_SPACE.has(text[start])) start++;
    }
    if (start < text.length) parts.push(text.slice(start));
    return parts;
  }

  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string {
    const skipSpecial = options?.skipSpecialTokens ?? false;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      // Models may pad their logits past the vocabulary; such ids have no text.
      if (!(id >= 0 && id < this.vocabSize)) continue;
      if (skipSpecial && this.types[id] === TokenType.Control) continue;
      let bytes = this.bytesCache[id] ?? (this.bytesCache[id] = this.bytesOfToken(id));
      if (bytes[0] === 0x20 && (i === 0 || ids[i - 1] === this.bosTokenId) && this.dropsLeadingSpace(id)) bytes = bytes.subarray(1);
      parts.push(bytes);
      total += bytes.length;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return this.textDecoder.decode(all);
  }

  /** Control, unknown and unused tokens stand for no text of the answer; the rest for the bytes they decode to. */
  tokenBytes(id: number): Uint8Array | null {
    if (!(id >= 0 && id < this.vocabSize)) return null;
    const type = this.types[id];
    if (type === TokenType.Control || type === TokenType.Unknown || type === TokenType.Unused) return null;
    return this.bytesCache[id] ?? (this.bytesCache[id] = this.bytesOfToken(id));
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
}
