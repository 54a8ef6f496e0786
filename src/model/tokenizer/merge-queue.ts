/**
 * The candidate merges of one word, best first: highest score, then leftmost (llama.cpp's order for both
 * SentencePiece scores and BPE ranks, the latter pushed as -rank).
 */
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

  /** `size` is the merged pair's length: a popped entry whose symbols no longer add up to it is stale. */
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

/**
 * Merges adjacent symbols of one word in place, best-scored pair first, until no adjacent pair is mergeable, and
 * returns the surviving symbols in order. `scoreOf` gives a pair's score or undefined when it does not merge.
 */
export function mergeSymbols(symbols: string[], scoreOf: (left: string, right: string) => number | undefined): string[] {
  const n = symbols.length;
  const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
  const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
  const queue = new MergeQueue();
  const tryPair = (left: number, right: number): void => {
    if (left < 0 || right < 0) return;
    const score = scoreOf(symbols[left], symbols[right]);
    if (score !== undefined) queue.push(left, score, symbols[left].length + symbols[right].length);
  };
  for (let i = 0; i + 1 < n; i++) tryPair(i, i + 1);

  while (queue.length > 0) {
    const [left, size] = queue.pop();
    const right = next[left];
    // The symbols only grow and a merged-away one is emptied, so a pair still spanning `size` characters from the
    // same start is the pair that was queued.
    if (right < 0 || symbols[left] === '' || symbols[left].length + symbols[right].length !== size) continue;
    symbols[left] += symbols[right];
    symbols[right] = '';
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryPair(prev[left], left);
    tryPair(left, next[left]);
  }

  const out: string[] = [];
  for (let i = 0; i >= 0 && i < n; i = next[i]) out.push(symbols[i]);
  return out;
}
