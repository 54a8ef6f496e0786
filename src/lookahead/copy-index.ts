/**
 * Stored token sequences with a hash-chain index of their 3-grams (zlib's longest-match search), for drafting by
 * copying: find where the context's recent suffix occurred before and propose what followed it there.
 *
 * This goes beyond PIA's tries, which key continuations by the last one or two tokens only. A weak model repeats
 * itself, so a 2-token key has many continuations and the right one is crowded out of the budget; the longest
 * earlier matches of the whole recent suffix (most recent first on ties) name a few continuations, and the right one
 * is among them whenever the model repeats a passage or an answer. It also sees the request's own output at once, without the
 * trie's lag of a full n-gram.
 *
 * Sequences are separated by -1, so a copy never runs from one into the next. Past `capacity` tokens the older
 * half is dropped and the index rebuilt.
 */
const SEP = -1;
const NONE = -1;
/** Tokens hashed per index entry: the shortest suffix a copy may start from. */
export const MIN_MATCH = 3;
/** Earlier occurrences examined per lookup, newest first. */
const MAX_CHAIN = 64;
/** Match lengths are counted up to this many tokens: longer is as good as certain. */
const GOOD_MATCH = 32;

const MIN_BUCKETS = 1024;
const MAX_BUCKETS = 1 << 20;

export class CopyIndex {
  private store: Int32Array;
  private length = 0;
  /** Hash bucket → newest store position whose 3-gram ends there. */
  private head: Int32Array;
  /** Position → previous position with the same bucket (the chain). */
  private prev: Int32Array;
  private readonly maxBuckets: number;

  constructor(readonly capacity = 1 << 20, initial = 1024) {
    const size = Math.max(16, Math.min(initial, capacity + 1));
    this.store = new Int32Array(size);
    this.prev = new Int32Array(size);
    let buckets = MIN_BUCKETS;
    while (buckets < capacity / 2 && buckets < MAX_BUCKETS) buckets *= 2;
    this.maxBuckets = buckets;
    // The hash heads grow with what is stored (see reserve), so an index that holds little costs little.
    this.head = new Int32Array(MIN_BUCKETS).fill(NONE);
  }

  get size(): number {
    return this.length;
  }

  /** The stored token at `pos` (-1 = a sequence boundary or past the end). */
  token(pos: number): number {
    return pos >= 0 && pos < this.length ? this.store[pos] : SEP;
  }

  /** Appends tokens to the current sequence. */
  append(tokens: ArrayLike<number>, start = 0, end = tokens.length): void {
    if (end - start >= this.capacity) start = end - this.capacity + 1;
    if (this.length + (end - start) + 1 > this.capacity) this.dropOlderHalf(end - start + 1);
    this.reserve(this.length + (end - start) + 1);
    for (let i = start; i < end; i++) {
      this.store[this.length] = tokens[i];
      this.index(this.length++);
    }
  }

  /** Ends the current sequence: later tokens never continue it. */
  endSequence(): void {
    if (this.length === 0 || this.store[this.length - 1] === SEP) return;
    if (this.length + 1 > this.capacity) this.dropOlderHalf(1);
    this.reserve(this.length + 1);
    this.prev[this.length] = NONE;
    this.store[this.length++] = SEP;
  }

  /**
   * Earlier matches of `context[0..n)`'s suffix — at least MIN_MATCH tokens, ending before position `before`, with a
   * stored continuation — longest first and newest first among equals, at most `positions.length`: each one's
   * stored position (of the match's last token) and match length (at most GOOD_MATCH). Returns how many were written.
   * Several matches name several continuations: what the model said after this phrase each time it occurred.
   */
  matches(context: ArrayLike<number>, n: number, positions: Int32Array, lengths: Int32Array, before = this.length): number {
    if (n < MIN_MATCH) return 0;
    let count = 0;
    let pos = this.head[this.bucket(context, n - MIN_MATCH)];
    for (let chain = 0; pos !== NONE && chain < MAX_CHAIN; chain++, pos = this.prev[pos]) {
      if (pos + 1 >= before || this.store[pos + 1] === SEP) continue;
      let len = 0;
      while (len < n && len <= pos && len < GOOD_MATCH && this.store[pos - len] === context[n - 1 - len]) len++;
      if (len < MIN_MATCH) continue;
      // Insertion into the kept list, longest first; chain order (newest first) breaks ties.
      let i = Math.min(count, positions.length - 1);
      if (i === positions.length - 1 && count === positions.length && lengths[i] >= len) continue;
      while (i > 0 && lengths[i - 1] < len) {
        positions[i] = positions[i - 1];
        lengths[i] = lengths[i - 1];
        i--;
      }
      positions[i] = pos;
      lengths[i] = len;
      if (count < positions.length) count++;
    }
    return count;
  }

  clear(): void {
    this.length = 0;
    this.head.fill(NONE);
  }

  private index(pos: number): void {
    this.prev[pos] = NONE;
    if (pos < MIN_MATCH - 1) return;
    for (let j = pos - MIN_MATCH + 1; j <= pos; j++) if (this.store[j] === SEP) return;
    const b = this.bucket(this.store, pos - MIN_MATCH + 1);
    this.prev[pos] = this.head[b];
    this.head[b] = pos;
  }

  private bucket(ids: ArrayLike<number>, at: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < MIN_MATCH; i++) h = Math.imul(h ^ ids[at + i], 0x01000193);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    return (h ^ (h >>> 12)) & (this.head.length - 1);
  }

  private reserve(needed: number): void {
    if (needed <= this.store.length) return;
    const size = Math.min(Math.max(needed, this.store.length * 2), this.capacity + 1);
    const store = new Int32Array(size);
    store.set(this.store.subarray(0, this.length));
    this.store = store;
    const prev = new Int32Array(size);
    prev.set(this.prev.subarray(0, this.length));
    this.prev = prev;
    if (this.head.length < this.maxBuckets && size > 2 * this.head.length) {
      let buckets = this.head.length;
      while (buckets < this.maxBuckets && size > 2 * buckets) buckets *= 2;
      this.head = new Int32Array(buckets).fill(NONE);
      for (let i = 0; i < this.length; i++) this.index(i);
    }
  }

  /** Keeps the newest half (or less, to make room for `incoming`) and re-indexes it. */
  private dropOlderHalf(incoming: number): void {
    const keep = Math.max(0, Math.min(this.length >> 1, this.capacity - incoming));
    this.store.copyWithin(0, this.length - keep, this.length);
    this.length = keep;
    this.head.fill(NONE);
    for (let i = 0; i < keep; i++) this.index(i);
  }
}
