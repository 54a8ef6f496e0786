/** Forwards up to this many tokens (drafts) write their logits into the two small buffers. */
const SMALL_LOGITS_ROWS = 64;

/**
 * What a sequence's forwards return, in buffers reused by later sequences: two small logits buffers used in turn
 * (so a decode forward's logits stay valid through the next forward too: callers compare consecutive forwards),
 * one that grows to the longest prefill chunk, and the greedy ids.
 */
export class OutputBuffers {
  /** Allocated on the first forward that fetches logits: greedy sequences read ids only (and 2 × 64 rows of a 152k vocabulary are 78 MB). */
  private small: Float32Array[] = [];
  private turn = 0;
  private large = new Float32Array(0);
  private ids = new Int32Array(SMALL_LOGITS_ROWS);
  private ids64 = new BigInt64Array(SMALL_LOGITS_ROWS);
  private top = new Int32Array(0);
  private top64 = new BigInt64Array(0);
  /** The best ids of the last forward that fetched them (see topIds). */
  lastTop = new Int32Array(0);

  constructor(private readonly vocab: number) {}

  logits(rows: number): Float32Array {
    const n = rows * this.vocab;
    if (rows <= SMALL_LOGITS_ROWS) {
      if (this.small.length === 0) this.small = [new Float32Array(SMALL_LOGITS_ROWS * this.vocab), new Float32Array(SMALL_LOGITS_ROWS * this.vocab)];
      this.turn ^= 1;
      return this.small[this.turn].subarray(0, n);
    }
    if (this.large.length < n) this.large = new Float32Array(n);
    return this.large.subarray(0, n);
  }

  /** Where ORT writes the ids (int64, as ArgMax makes them) and the int32 copy callers read. */
  nextIds(rows: number): { raw: BigInt64Array; ids: Int32Array } {
    if (this.ids.length < rows) {
      this.ids = new Int32Array(Math.max(rows, this.ids.length * 2));
      this.ids64 = new BigInt64Array(this.ids.length);
    }
    return { raw: this.ids64.subarray(0, rows), ids: this.ids.subarray(0, rows) };
  }

  /** Where ORT writes each row's `k` best ids, and the int32 copy `lastTop` becomes once converted. */
  topIds(rows: number, k: number): { raw: BigInt64Array; ids: Int32Array } {
    const n = rows * k;
    if (this.top.length < n) {
      this.top = new Int32Array(Math.max(n, this.top.length * 2));
      this.top64 = new BigInt64Array(this.top.length);
    }
    this.lastTop = this.top.subarray(0, n);
    return { raw: this.top64.subarray(0, n), ids: this.lastTop };
  }
}
