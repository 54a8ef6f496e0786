/** A run of rows in the slab. */
export interface SlabRegion {
  start: number;
  rows: number;
}

/**
 * The K/V rows of every sequence of a model in one buffer per layer ([capacity, kvDim] rows). Each sequence owns a
 * region of consecutive rows (its cache positions in order), which a forward takes as a zero-copy input view;
 * regions keep their offsets when the slab grows.
 */
export class KvSlab {
  keys: Float32Array[] = [];
  values: Float32Array[] = [];
  private capacity = 0;
  /** Rows below this are or were in a region. */
  private top = 0;
  /** Released regions below `top`, by start. */
  private readonly holes: SlabRegion[] = [];

  constructor(
    readonly numLayers: number,
    readonly rowSize: number,
    initialRows: number,
  ) {
    this.resize(initialRows);
  }

  alloc(rows: number): SlabRegion {
    const i = this.holes.findIndex((h) => h.rows >= rows);
    if (i >= 0) {
      const hole = this.holes[i];
      const region = { start: hole.start, rows };
      if (hole.rows === rows) this.holes.splice(i, 1);
      else this.holes[i] = { start: hole.start + rows, rows: hole.rows - rows };
      return region;
    }
    if (this.top + rows > this.capacity) this.resize(Math.max(this.capacity * 2, this.top + rows));
    const region = { start: this.top, rows };
    this.top += rows;
    return region;
  }

  release(region: SlabRegion): void {
    let { start, rows } = region;
    let i = this.holes.findIndex((h) => h.start > start);
    if (i < 0) i = this.holes.length;
    const next = this.holes[i];
    if (next && start + rows === next.start) {
      rows += next.rows;
      this.holes.splice(i, 1);
    }
    const prev = this.holes[i - 1];
    if (prev && prev.start + prev.rows === start) {
      start = prev.start;
      rows += prev.rows;
      this.holes.splice(--i, 1);
    }
    if (start + rows === this.top) this.top = start;
    else this.holes.splice(i, 0, { start, rows });
  }

  /** A region of `rows` holding the first `filled` rows of `from`, which is released. */
  move(from: SlabRegion, rows: number, filled: number): SlabRegion {
    const to = this.alloc(rows);
    this.copyRows(from.start, to.start, filled);
    this.release(from);
    return to;
  }

  /** Copies row `from` to row `to` (absolute slab rows) in every layer. */
  copyRow(from: number, to: number): void {
    this.copyRows(from, to, 1);
  }

  /** Copies `count` rows from row `from` on to row `to` on (absolute slab rows; the ranges may overlap) in every layer. */
  copyRows(from: number, to: number, count: number): void {
    const d = this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      this.keys[l].copyWithin(to * d, from * d, (from + count) * d);
      this.values[l].copyWithin(to * d, from * d, (from + count) * d);
    }
  }

  private resize(rows: number): void {
    const keep = this.top * this.rowSize;
    const grow = (old: Float32Array | undefined) => {
      const a = new Float32Array(rows * this.rowSize);
      if (old) a.set(old.subarray(0, keep));
      return a;
    };
    for (let l = 0; l < this.numLayers; l++) {
      this.keys[l] = grow(this.keys[l]);
      this.values[l] = grow(this.values[l]);
    }
    this.capacity = rows;
  }
}
