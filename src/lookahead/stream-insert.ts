import type { TokenTrie } from './trie.js';

/**
 * Feeds generated tokens into a trie while they are produced, so a request can draft from its own output.
 * Each output position is inserted once, when its full gramLength continuation is known (a lag of gramLength
 * tokens); `finish` adds the shorter tail n-grams. Stop-word keys are skipped; everything after an EOS is ignored.
 */
export class OutputStreamInserter {
  private buf: Int32Array;
  private len = 0;
  private ended = false;

  constructor(private readonly trie: TokenTrie) {
    this.buf = new Int32Array(4 * trie.gramLength + 4);
  }

  push(tokens: ArrayLike<number>): void {
    if (this.ended) return;
    const cut = this.trie.eosCut(tokens, 0, tokens.length);
    if (cut < tokens.length) this.ended = true;
    if (this.len + cut > this.buf.length) this.widen(this.len + cut);
    for (let i = 0; i < cut; i++) this.buf[this.len++] = tokens[i];
    const gram = this.trie.gramLength;
    let pos = 0;
    for (; pos + gram < this.len; pos++) this.insertAt(pos, pos + 1 + gram);
    if (pos > 0) {
      this.buf.copyWithin(0, pos, this.len);
      this.len -= pos;
    }
  }

  /** Inserts the tail n-grams (shorter than gramLength) and resets, ready for another stream. */
  finish(): void {
    for (let pos = 0; pos < this.len - 1; pos++) this.insertAt(pos, this.len);
    this.len = 0;
    this.ended = false;
  }

  private insertAt(pos: number, end: number): void {
    const key = this.buf[pos];
    if (!this.trie.isStopWord(key)) this.trie.insertGram(key, this.buf, pos + 1, end);
  }

  private widen(needed: number): void {
    const next = new Int32Array(Math.max(needed, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}
