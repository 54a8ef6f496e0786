import type { TextTokenizer } from '../model/tokenizer/types.js';
import { splitText } from './split-text.js';

/** Characters tokenized at a time (documents are tokenized in pieces of this size too). */
export const PIECE_CHARS = 2048;

/**
 * The first `max` tokens of `text`, tokenized a piece at a time (see splitText), and whether the text went on past
 * them. The work is bounded by `max`, not by the text: the megabytes of a hostile field past the limit are never
 * tokenized. Pieces tokenized apart may differ from the whole text's tokens at a seam; fine for text that only
 * feeds drafts.
 */
export function encodeAtMost(tok: TextTokenizer, text: string, max: number): { ids: number[]; cut: boolean } {
  const ids: number[] = [];
  let at = 0;
  while (at < text.length) {
    if (ids.length >= max) return { ids, cut: true };
    // Only the next piece is cut off the text, not the whole text into pieces.
    const piece = splitText(text.slice(at, at + 2 * PIECE_CHARS), PIECE_CHARS)[0];
    at += piece.length;
    for (const id of tok.encode(piece, { addSpecialTokens: false })) ids.push(id);
  }
  if (ids.length > max) {
    ids.length = max;
    return { ids, cut: true };
  }
  return { ids, cut: false };
}
