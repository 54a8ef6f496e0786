/**
 * The SentencePiece-BPE tokenizer embedded in a GGUF (`tokenizer.ggml.model = "llama"`), encoding as llama.cpp's
 * SPM tokenizer does: spaces become "▁", a leading "▁" is added, the adjacent pair whose merged piece scores
 * highest is merged until none is a token, and characters outside the vocabulary fall back to <0xXX> byte tokens.
 */
import { ModelLoadError } from '../../errors.js';
import { ChatTemplate } from './chat-template.js';
import type { ChatMessage, ChatTool, TextTokenizer } from './types.js';

/** llama.cpp's token types (tokenizer.ggml.token_type). */
const enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

const SPACE_MARK = '▁';
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
/** What SentencePiece shows for an unknown token. */
const UNKNOWN_TEXT = ' \u2047 ';

function metaString(meta: Map<string, unknown>, key: string): string | null {
  const v = meta.get(key);
  return typeof v === 'string' ? v : null;
}

function metaId(meta: Map<string, unknown>, key: string, vocabSize: number): number | null {
  const v = meta.get(key);
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < vocabSize ? v : null;
}

function metaBool(meta: Map<string, unknown>, key: string, fallback: boolean): boolean {
  const v = meta.get(key);
  return typeof v === 'boolean' ? v : fallback;
}

function numericArray(meta: Map<string, unknown>, key: string, length: number): ArrayLike<number> | null {
  const v = meta.get(key);
  if (v === undefined) return null;
  if ((!ArrayBuffer.isView(v) && !Array.isArray(v)) || (v as ArrayLike<number>).length !== length) {
    throw new ModelLoadError(`GGUF metadata ${key} must be a numeric array of ${length} entries`);
  }
  return v as unknown as ArrayLike<number>;
}

/** A max-heap of candidate merges: highest score first, then leftmost (llama.cpp's order). */
class MergeQueue {
  private readonly left: number[] = [];
  private readonly score: number[] = [];
  private readonly size: number[] = [];

  get length(): number {
    return this.left.length;
  }

  private before(a: number, b: number): boolean {
    return this.score[a] > this.score[b] || (this.score[a] === this.score[b] && this.left[a] < this.left[b]);
  }

  private swap(a: number, b: number): void {
    for (const arr of [this.left, this.score, this.size]) [arr[a], arr[b]] = [arr[b], arr[a]];
  }

  push(left: number, score: number, size: number): void {
    this.left.push(left);
    this.score.push(score);
    this.size.push(size);
    for (let i = this.left.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the best entry, returning [left, size]. */
  pop(): [number, number] {
    const top: [number, number] = [this.left[0], this.size[0]];
    const last = this.left.length - 1;
    this.swap(0, last);
    this.left.pop();
    this.score.pop();
    this.size.pop();
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

class GgufSpmTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly chatTemplateAddsBos: boolean;
  private readonly pieceToId = new Map<string, number>();
  private readonly byteToId = new Int32Array(256).fill(-1);
  /** UTF-8 bytes each token decodes to (▁ as a space, byte tokens as their byte). */
  private readonly pieceBytes: Uint8Array[];
  private readonly types: Int32Array;
  private readonly scores: Float32Array;
  /** Control and user-defined tokens by first character, longest first: matched verbatim before SentencePiece runs. */
  private readonly specialPieces = new Map<string, { text: string; id: number }[]>();
  private readonly unknownId: number | null;
  private readonly addBos: boolean;
  private readonly addSpacePrefix: boolean;
  private readonly chat: ChatTemplate;
  private readonly utf8 = new TextEncoder();
  private readonly textDecoder = new TextDecoder();

  constructor(meta: Map<string, unknown>) {
    const model = metaString(meta, 'tokenizer.ggml.model');
    if (model !== 'llama') {
      throw new ModelLoadError(`GGUF tokenizer model "${String(model)}" is not supported (only the SentencePiece "llama" tokenizer)`);
    }
    const tokens = meta.get('tokenizer.ggml.tokens');
    if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every((t) => typeof t === 'string')) {
      throw new ModelLoadError('GGUF metadata tokenizer.ggml.tokens is missing or not a list of strings');
    }
    const pieces = tokens as string[];
    this.vocabSize = pieces.length;
    this.scores = Float32Array.from(numericArray(meta, 'tokenizer.ggml.scores', pieces.length) ?? new Float32Array(pieces.length));
    const types = numericArray(meta, 'tokenizer.ggml.token_type', pieces.length);
    this.types = types !== null ? Int32Array.from(types) : Int32Array.from(pieces, (p) => (BYTE_PIECE.test(p) ? TokenType.Byte : TokenType.Normal));

    this.pieceBytes = pieces.map((piece, id) => {
      const byte = this.types[id] === TokenType.Byte ? BYTE_PIECE.exec(piece) : null;
      if (byte !== null) {
        const value = parseInt(byte[1], 16);
        this.byteToId[value] = id;
        return Uint8Array.of(value);
      }
      // The first id wins for duplicate pieces, as in llama.cpp's token_to_id.
      if (!this.pieceToId.has(piece)) this.pieceToId.set(piece, id);
      const type = this.types[id];
      if ((type === TokenType.Control || type === TokenType.UserDefined) && piece.length > 0) {
        const list = this.specialPieces.get(piece[0]) ?? [];
        list.push({ text: piece, id });
        this.specialPieces.set(piece[0], list);
      }
      if (type === TokenType.Unknown) return this.utf8.encode(UNKNOWN_TEXT);
      return this.utf8.encode(piece.replaceAll(SPACE_MARK, ' '));
    });
    for (const list of this.specialPieces.values()) list.sort((a, b) => b.text.length - a.text.length);

    this.unknownId = metaId(meta, 'tokenizer.ggml.unknown_token_id', this.vocabSize);
    this.bosTokenId = metaId(meta, 'tokenizer.ggml.bos_token_id', this.vocabSize);
    const eos = [metaId(meta, 'tokenizer.ggml.eos_token_id', this.vocabSize), metaId(meta, 'tokenizer.ggml.eot_token_id', this.vocabSize)];
    this.eosTokenIds = [...new Set(eos.filter((id): id is number => id !== null))];
    this.addBos = metaBool(meta, 'tokenizer.ggml.add_bos_token', true) && this.bosTokenId !== null;
    this.addSpacePrefix = metaBool(meta, 'tokenizer.ggml.add_space_prefix', true);

    const tokenText = (id: number | null): string | null => (id === null ? null : pieces[id]);
    this.chat = new ChatTemplate({
      template: metaString(meta, 'tokenizer.chat_template'),
      bosToken: tokenText(this.bosTokenId),
      eosToken: tokenText(this.eosTokenIds[0] ?? null),
    });
    this.chatTemplateAddsBos = this.chat.addsBos;
  }

  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    const out: number[] = [];
    if ((options?.addSpecialTokens ?? true) && this.addBos) out.push(this.bosTokenId!);
    // As llama.cpp: text at the start or right after a special token gets the space prefix.
    let afterSpecial = true;
    for (const part of this.splitSpecial(text)) {
      if (typeof part === 'number') {
        out.push(part);
        afterSpecial = true;
      } else {
        this.encodeText((this.addSpacePrefix && afterSpecial ? ' ' : '') + part, out);
        afterSpecial = false;
      }
    }
    return out;
  }

  /** Text pieces and special-token ids in order; empty text yields nothing. */
  private splitSpecial(text: string): (string | number)[] {
    const parts: (string | number)[] = [];
    let start = 0;
    let i = 0;
    outer: while (i < text.length) {
      for (const special of this.specialPieces.get(text[i]) ?? []) {
        if (text.startsWith(special.text, i)) {
          if (i > start) parts.push(text.slice(start, i));
          parts.push(special.id);
          i += special.text.length;
          start = i;
          continue outer;
        }
      }
      i++;
    }
    if (start < text.length) parts.push(text.slice(start));
    return parts;
  }

  private encodeText(text: string, out: number[]): void {
    const symbols = Array.from(text.replaceAll(' ', SPACE_MARK));
    const n = symbols.length;
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const queue = new MergeQueue();
    const tryPair = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const merged = symbols[left] + symbols[right];
      const id = this.pieceToId.get(merged);
      if (id !== undefined) queue.push(left, this.scores[id], merged.length);
    };
    for (let i = 0; i + 1 < n; i++) tryPair(i, i + 1);

    while (queue.length > 0) {
      const [left, size] = queue.pop();
      const right = next[left];
      // Entries whose symbols changed since they were queued are stale.
      if (right < 0 || symbols[left] === '' || symbols[left].length + symbols[right].length !== size) continue;
      symbols[left] += symbols[right];
      symbols[right] = '';
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryPair(prev[left], left);
      tryPair(left, next[left]);
    }

    for (let i = 0; i >= 0 && i < n; i = next[i]) {
      const id = this.pieceToId.get(symbols[i]);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of this.utf8.encode(symbols[i])) {
        const byteId = this.byteToId[byte];
        if (byteId >= 0) out.push(byteId);
        else if (this.unknownId !== null) out.push(this.unknownId);
      }
    }
  }

  tokenBytes(id: number): Uint8Array | null {
    if (id < 0 || id >= this.vocabSize) return null;
    const type = this.types[id];
    return type === TokenType.Control || type === TokenType.Unused || type === TokenType.Unknown ? null : this.pieceBytes[id];
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
      let bytes = this.pieceBytes[id];
      // SentencePiece drops the space its dummy prefix added: on the first piece, and on the one after BOS.
      if (this.addSpacePrefix && bytes[0] === 0x20 && (i === 0 || ids[i - 1] === this.bosTokenId) && this.types[id] !== TokenType.Byte) {
        bytes = bytes.subarray(1);
      }
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

  get chatTemplateTakesTools(): boolean {
    return this.chat.takesTools;
  }

  renderChat(messages: ChatMessage[], tools?: ChatTool[]): string {
    return this.chat.render(messages, tools);
  }
}

/** The tokenizer stored in a GGUF's metadata (openGguf(...).metadata). */
export function createGgufTokenizer(metadata: Map<string, unknown>): TextTokenizer {
  return new GgufSpmTokenizer(metadata);
}
