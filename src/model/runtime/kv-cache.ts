/**
 * One sequence's KV cache, owned by JavaScript: per layer one K and one V buffer of [capacity, kvDim] rows
 * (BSNH, rows = cache positions). The filled prefix is handed to ORT as a zero-copy view, and ORT writes the new
 * rows straight behind it.
 */
export class KvCache {
  readonly keys: Float32Array[] = [];
  readonly values: Float32Array[] = [];
  private capacity: number;

  constructor(readonly numLayers: number, readonly rowSize: number, readonly maxRows: number, initialRows = 256) {
    this.capacity = Math.min(maxRows, initialRows);
    for (let l = 0; l < numLayers; l++) {
      this.keys.push(new Float32Array(this.capacity * rowSize));
      this.values.push(new Float32Array(this.capacity * rowSize));
    }
  }

  /** Grows by doubling (capped at maxRows) until `rows` fit, keeping the first `filled` rows. */
  reserve(rows: number, filled: number): void {
    if (rows <= this.capacity) return;
    let cap = this.capacity;
    while (cap < rows) cap *= 2;
    this.capacity = Math.min(cap, this.maxRows);
    const keep = filled * this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      const k = new Float32Array(this.capacity * this.rowSize);
      k.set(this.keys[l].subarray(0, keep));
      this.keys[l] = k;
      const v = new Float32Array(this.capacity * this.rowSize);
      v.set(this.values[l].subarray(0, keep));
      this.values[l] = v;
    }
  }

  /** Moves row `from` to row `to` in every layer. */
  move(from: number, to: number): void {
    const d = this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      this.keys[l].copyWithin(to * d, from * d, (from + 1) * d);
      this.values[l].copyWithin(to * d, from * d, (from + 1) * d);
    }
  }
}
