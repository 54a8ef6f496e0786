/**
 * The SentencePiece-BPE tokenizer embedded in a GGUF (`tokenizer.ggml.model = "llama"`), encoding as llama.cpp's
 * SPM tokenizer does: spaces become "▁", a leading "▁" is added, the adjacent pair whose merged piece scores
 * highest is merged until none is a token, and characters outside the vocabulary fall back to <0xXX> byte tokens.
 */
import { BYTE_PIECE, GgufTokenizer, metaBool, metaId, numericArray, TokenType } from './gguf-vocab.js';
import { mergeSymbols } from './merge-queue.js';

const SPACE_MARK = '▁';
/** What SentencePiece shows for an unknown token. */
const UNKNOWN_TEXT = ' \u2047 ';

export class GgufSpmTokenizer extends GgufTokenizer {
  private readonly byteToId = new Int32Array(256).fill(-1);
  private readonly scores: Float32Array;
  private readonly unknownId: number | null;
  private readonly addSpacePrefix: boolean;

  constructor(meta: Map<string, unknown>) {
    super(meta, true);
    this.scores = Float32Array.from(numericArray(meta, 'tokenizer.ggml.scores', this.vocabSize) ?? new Float32Array(this.vocabSize));
    this.unknownId = metaId(meta, 'tokenizer.ggml.unknown_token_id', this.vocabSize);
    this.addSpacePrefix = metaBool(meta, 'tokenizer.ggml.add_space_prefix', true);
    this.types.forEach((type, id) => {
      const byte = type === TokenType.Byte ? BYTE_PIECE.exec(this.pieces[id]) : null;
      if (byte !== null) this.byteToId[parseInt(byte[1], 16)] = id;
    });
  }

  protected textBytes(id: number): Uint8Array {
    if (this.types[id] === TokenType.Unknown) return this.utf8.encode(UNKNOWN_TEXT);
    return this.utf8.encode(this.pieces[id].replaceAll(SPACE_MARK, ' '));
  }

  /** SentencePiece drops the space its dummy prefix added: on the first piece, and on the one after BOS. */
  protected override dropsLeadingSpace(id: number): boolean {
    return this.addSpacePrefix && this.types[id] !== TokenType.Byte;
  }

  /** As llama.cpp: text at the start or right after a special token gets the space prefix. */
  protected encodeText(text: string, afterSpecial: boolean, out: number[]): void {
    const spaced = (this.addSpacePrefix && afterSpecial ? ' ' : '') + text;
    const symbols = mergeSymbols(Array.from(spaced.replaceAll(' ', SPACE_MARK)), (left, right) => {
      const id = this.pieceToId.get(left + right);
      return id === undefined ? undefined : this.scores[id];
    });
    for (const symbol of symbols) {
      const id = this.pieceToId.get(symbol);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of this.utf8.encode(symbol)) {
        const byteId = this.byteToId[byte];
        if (byteId >= 0) out.push(byteId);
        else if (this.unknownId !== null) out.push(this.unknownId);
      }
    }
  }
}
