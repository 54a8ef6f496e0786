/**
 * The byte-level BPE tokenizer embedded in a GGUF (`tokenizer.ggml.model = "gpt2"`: Llama 3, Qwen, SmolLM, Phi-4),
 * encoding as llama.cpp's BPE tokenizer does: split the text into words with the pre-tokenizer that
 * `tokenizer.ggml.pre` names, spell each word's UTF-8 bytes with GPT-2's byte-to-character table, then merge the
 * adjacent pair of lowest rank in `tokenizer.ggml.merges` (leftmost on ties) until no pair merges.
 */
import { ModelLoadError } from '../../errors.js';
import { preTokenize, preTokenizerStyle, type PreTokenizerStyle } from './bpe-pretokenizers.js';
import { GgufTokenizer, metaString, stringArray, TokenType } from './gguf-vocab.js';
import { mergeSymbols } from './merge-queue.js';

/**
 * GPT-2's reversible byte → character table: printable Latin-1 bytes stand for themselves, the other 68 bytes for
 * U+0100 onwards, so every byte string is a string of visible characters.
 */
const BYTE_TO_CHAR: string[] = [];
const CHAR_TO_BYTE = new Map<string, number>();
{
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    BYTE_TO_CHAR[b] = String.fromCharCode(printable ? b : 0x100 + shifted++);
    CHAR_TO_BYTE.set(BYTE_TO_CHAR[b], b);
  }
}

/** Words seen recently and their ids: prompts repeat words, and merging is the costly part. */
const WORD_CACHE_LIMIT = 50_000;

export class GgufBpeTokenizer extends GgufTokenizer {
  private readonly style: PreTokenizerStyle;
  /** Merge rank by the pair as GGUF writes it, "left right". */
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();

  constructor(meta: Map<string, unknown>) {
    const style = preTokenizerStyle(metaString(meta, 'tokenizer.ggml.pre'));
    super(meta, style.addBos);
    this.style = style;
    const merges = stringArray(meta, 'tokenizer.ggml.merges');
    if (merges === null) throw new ModelLoadError('GGUF metadata tokenizer.ggml.merges is missing (a "gpt2" tokenizer needs its merges)');
    merges.forEach((merge, rank) => {
      if (!this.ranks.has(merge)) this.ranks.set(merge, rank);
    });
  }

  /** Normal tokens are byte-level text; control and user-defined ones are their own literal text. */
  protected textBytes(id: number): Uint8Array {
    const piece = this.pieces[id];
    if (this.types[id] !== TokenType.Normal) return this.utf8.encode(piece);
    const bytes: number[] = [];
    for (const ch of piece) {
      const b = CHAR_TO_BYTE.get(ch);
      if (b !== undefined) bytes.push(b);
      else for (const u of this.utf8.encode(ch)) bytes.push(u);
    }
    return Uint8Array.from(bytes);
  }

  protected encodeText(text: string, _afterSpecial: boolean, out: number[]): void {
    for (const word of preTokenize(text, this.style.patterns)) {
      const ids = this.cache.get(word) ?? this.encodeWord(word);
      for (const id of ids) out.push(id);
    }
  }

  private encodeWord(word: string): number[] {
    let spelled = '';
    for (const b of this.utf8.encode(word)) spelled += BYTE_TO_CHAR[b];
    const ids: number[] = [];
    const whole = this.style.ignoreMerges ? this.pieceToId.get(spelled) : undefined;
    if (whole !== undefined) {
      ids.push(whole);
    } else {
      const symbols = mergeSymbols(Array.from(spelled), (left, right) => {
        const rank = this.ranks.get(`${left} ${right}`);
        return rank === undefined ? undefined : -rank;
      });
      for (const symbol of symbols) {
        const id = this.pieceToId.get(symbol);
        if (id !== undefined) ids.push(id);
        else this.pushAsciiTokens(symbol, ids);
      }
    }
    if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  /**
   * A merged symbol that is no token (a vocabulary missing some merge result) falls back, as in llama.cpp, to those
   * of its single bytes that are tokens: in UTF-8 only the ASCII ones can be.
   */
  private pushAsciiTokens(symbol: string, ids: number[]): void {
    for (const ch of symbol) {
      const id = ch.charCodeAt(0) < 0x80 ? this.pieceToId.get(ch) : undefined;
      if (id !== undefined) ids.push(id);
    }
  }
}
