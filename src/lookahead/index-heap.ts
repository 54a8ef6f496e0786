/**
 * A binary max-heap of small integer ids ranked by an external key array; equal keys pop the lower id first, so
 * selection is deterministic. Storage is reused across clears and grows only when needed.
 */
export class IndexHeap {
  private items: Int32Array = new Int32Array(64);
  private n = 0;
  private keys: Float64Array = new Float64Array(0);

  get size(): number {
    return this.n;
  }

  /** Empties the heap and ranks further pushes by `keys` (read at push/pop time; must not change meanwhile). */
  reset(keys: Float64Array): void {
    this.keys = keys;
    this.n = 0;
  }

  /** Points at a re-allocated key array holding the same keys (the owner grew its storage). */
  rekey(keys: Float64Array): void {
    this.keys = keys;
  }

  push(id: number): void {
    if (this.n === this.items.length) {
      const next = new Int32Array(this.items.length * 2);
      next.set(this.items);
      this.items = next;
    }
    let i = this.n++;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.before(id, this.items[up])) break;
      this.items[i] = this.items[up];
      i = up;
    }
    this.items[i] = id;
  }

  pop(): number {
    const top = this.items[0];
    const last = this.items[--this.n];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.n) break;
      if (child + 1 < this.n && this.before(this.items[child + 1], this.items[child])) child++;
      if (!this.before(this.items[child], last)) break;
      this.items[i] = this.items[child];
      i = child;
    }
    if (this.n > 0) this.items[i] = last;
    return top;
  }

  private before(a: number, b: number): boolean {
    const ka = this.keys[a];
    const kb = this.keys[b];
    return ka > kb || (ka === kb && a < b);
  }
}
