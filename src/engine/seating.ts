/**
 * How many times the key rows its streams need a decode forward may attend over, padding included: the batched
 * graph pads every sequence's attention, and the copies of its K/V, to the longest sequence in the forward. Measured
 * on the 150M-cost model, one round of streams at past 1400 + 7 × 300 took 182 ms in one forward and 86 ms split
 * (q8: 205 against 78); at 700 + 3 × 250 (×1.9 padding) fp32 took 55 against 60 ms, q8 62 against 38.
 */
export const PADDING_LIMIT = 2;

/**
 * Seats one decode forward from the candidate streams, given in turn order by the key rows each attends over: the
 * first always, then each that keeps the forward within PADDING_LIMIT and `limit` seats. Writes the seated
 * candidates' indices into `seated` and returns where the next forward's turn starts: the first candidate passed
 * over (it is seated first then, with the streams of its own length), else the number of candidates looked at.
 */
export function seatByLength(rows: ArrayLike<number>, count: number, limit: number, seated: number[]): number {
  seated.length = 0;
  let keys = 0;
  let longest = 0;
  let skipped = -1;
  let i = 0;
  for (; i < count && seated.length < limit; i++) {
    const r = rows[i];
    if (seated.length > 0 && (seated.length + 1) * Math.max(longest, r) > PADDING_LIMIT * (keys + r)) {
      if (skipped < 0) skipped = i;
      continue;
    }
    seated.push(i);
    keys += r;
    longest = Math.max(longest, r);
  }
  return skipped >= 0 ? skipped : i;
}
