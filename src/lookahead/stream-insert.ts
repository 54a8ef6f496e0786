import type { TokenTrie } from './trie.js';

/**
 * Feeds generated tokens into a trie while they are produced, so a request can draft from its own output at once.
 *
 * PIA inserts an output position only when its full gramLength continuation is known, which hides the model's
 * fresh repetitions for gramLength tokens. Here every position's n-gram is built token by token instead: a new
 * token extends the open n-grams of the last gramLength positions by one node each (O(gramLength) per token, as a
 * lagged insert), and opens the n-gram of the position before it. Only the newly counted node of each n-gram is
 * counted, so counts keep meaning "n-grams with this prefix", and once a stream has ended the trie is exactly what
 * a bulk output insert of the same tokens builds. Stop-word keys are skipped; everything after an EOS is ignored.
 * A squeeze of the trie (finite node budget) frees nodes: the n-grams open at that moment are closed early.
 */
export class OutputStreamInserter {
  /** Node at the end of each open n-gram, oldest first (a ring of gramLength slots). */
  private readonly tips: Int32Array;
  /** Tokens already in each open n-gram, parallel to tips. */
  private readonly lengths: Int32Array;
  private first = 0;
  private open = 0;
  /** The previous token: the key of the n-gram the next token opens (-1 at the start of a stream). */
  private prev = -1;
  private ended = false;
  private epoch: number;

  constructor(private readonly trie: TokenTrie) {
    this.tips = new Int32Array(trie.gramLength);
    this.lengths = new Int32Array(trie.gramLength);
    this.epoch = trie.epoch;
  }

  push(tokens: ArrayLike<number>): void {
    if (this.ended) return;
    const trie = this.trie;
    const cut = trie.eosCut(tokens, 0, tokens.length);
    if (cut < tokens.length) this.ended = true;
    const gram = trie.gramLength;
    for (let i = 0; i < cut; i++) {
      const token = tokens[i];
      if (trie.epoch !== this.epoch) {
        this.open = 0;
        this.epoch = trie.epoch;
      }
      for (let j = 0, at = this.first; j < this.open; j++, at = (at + 1) % gram) {
        this.tips[at] = trie.extendGram(this.tips[at], token);
        this.lengths[at]++;
      }
      // The oldest n-gram is full now: close it.
      if (this.open > 0 && this.lengths[this.first] === gram) {
        this.first = (this.first + 1) % gram;
        this.open--;
      }
      if (this.prev >= 0 && !trie.isStopWord(this.prev)) {
        const tip = trie.extendGram(trie.openGram(this.prev), token);
        // At most gramLength - 1 n-grams stay open (lengths 1 .. gramLength - 1), so the ring never overflows.
        if (gram > 1) {
          const at = (this.first + this.open) % gram;
          this.tips[at] = tip;
          this.lengths[at] = 1;
          this.open++;
        }
      }
      this.prev = token;
      trie.enforceBudget();
    }
  }

  /** Ends the stream (every n-gram is already in the trie) and resets, ready for another one. */
  finish(): void {
    this.open = 0;
    this.first = 0;
    this.prev = -1;
    this.ended = false;
  }
}
