import { createHash } from 'node:crypto';
import type { TextTokenizer } from '../model/tokenizer/types.js';

/** Covers letters, digits, spaces, punctuation and a multi-byte character: tokenizers that differ split it differently. */
const PROBE = 'The quick brown fox, 0123456789 — jumps over the lazy dog. Ünïcödé 字 🙂';

/**
 * What a stream entry must have been written with to be applied here: token ids only mean the same text under the
 * same tokenizer. Replicas serving one model agree on it; a replica of another model pointed at the same prefix
 * writes entries the others skip.
 */
export function modelTag(tok: TextTokenizer): string {
  const identity = JSON.stringify({ vocab: tok.vocabSize, bos: tok.bosTokenId, eos: tok.eosTokenIds, probe: tok.encode(PROBE, { addSpecialTokens: false }) });
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}
