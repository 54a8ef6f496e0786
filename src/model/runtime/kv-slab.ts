/** A sequence's K/V rows: per layer, `rows` rows of keys and of values ([rows, kvDim] each), positions in order. */
export interface SlabRegion {
  readonly rows: number;
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
}

/** The smallest region, and the unit regions grow from: their sizes are this times a power of two (or the context). */
const MIN_ROWS = 256;
/** Released regions kept per size for the next sequences; past it they go to the GC. */
const POOLED_PER_SIZE = 4;
/** Bytes of released regions kept in all: one long prompt's region is a gigabyte on a real model (Qwen3-0.6B, 4k rows). */
const POOLED_BYTES = 256 * 2 ** 20;

/**
 * The K/V rows of a model's sequences, a region per sequence, each region its own buffers (one per layer and K/V),
 * which a forward takes as zero-copy input views. Released regions are kept by size for reuse.
 *
 * Regions own their buffers rather than sharing one per layer: a shared buffer must be copied whole to grow, and
 * with a prefix cache holding a gigabyte of rows that stalled the worker 1.7 s (150M-cost model). A region that
 * outgrows itself moves alone (`move`): only that sequence's rows are copied.
 */
export class KvSlab {
  private readonly pool = new Map<number, SlabRegion[]>();
  private pooledBytes = 0;

  constructor(
    readonly numLayers: number,
    readonly rowSize: number,
    /** The most rows a region may have (the context length). */
    readonly maxRows: number,
    private readonly maxPooledBytes = POOLED_BYTES,
  ) {}

  /**
   * A region of at least `rows` rows (at most maxRows): rounded up to a size class, MIN_ROWS times a power of two, for
   * a region that grows as it fills; `exact` rounds up to a multiple of MIN_ROWS only, for rows known ahead.
   */
  alloc(rows: number, exact = false): SlabRegion {
    let size = MIN_ROWS;
    if (exact) size = Math.ceil(rows / MIN_ROWS) * MIN_ROWS;
    else while (size < rows) size *= 2;
    size = Math.min(size, Math.max(rows, this.maxRows));
    const pooled = this.pool.get(size)?.pop();
    if (pooled) {
      this.pooledBytes -= this.bytes(pooled);
      return pooled;
    }
    const make = () => Array.from({ length: this.numLayers }, () => new Float32Array(size * this.rowSize));
    return { rows: size, keys: make(), values: make() };
  }

  release(region: SlabRegion): void {
    const bytes = this.bytes(region);
    if (this.pooledBytes + bytes > this.maxPooledBytes) return;
    let kept = this.pool.get(region.rows);
    if (!kept) this.pool.set(region.rows, (kept = []));
    if (kept.length < POOLED_PER_SIZE) {
      kept.push(region);
      this.pooledBytes += bytes;
    }
  }

  private bytes(region: SlabRegion): number {
    return 2 * this.numLayers * region.rows * this.rowSize * 4;
  }

  /** A region of at least `rows` rows (sized as `alloc` does) holding the first `filled` rows of `from`, which is released. */
  move(from: SlabRegion, rows: number, filled: number, exact = false): SlabRegion {
    const to = this.alloc(rows, exact);
    this.copyRows(from, 0, to, 0, filled);
    this.release(from);
    return to;
  }

  /** Copies `count` rows of `from` from row `at` on to rows `to` on of `into` (the same region: ranges may overlap). */
  copyRows(from: SlabRegion, at: number, into: SlabRegion, to: number, count: number): void {
    const d = this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      if (from === into) {
        into.keys[l].copyWithin(to * d, at * d, (at + count) * d);
        into.values[l].copyWithin(to * d, at * d, (at + count) * d);
      } else {
        into.keys[l].set(from.keys[l].subarray(at * d, (at + count) * d), to * d);
        into.values[l].set(from.values[l].subarray(at * d, (at + count) * d), to * d);
      }
    }
  }
}
