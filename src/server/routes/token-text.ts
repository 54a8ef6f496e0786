import type { TextTokenizer } from '../../model/tokenizer/types.js';

/** One token's text as logprobs report it (a lone byte of a multi-byte character shows as U+FFFD). */
export function tokenText(tok: TextTokenizer, token: number): string {
  return tok.decode([token], { skipSpecialTokens: false });
}
