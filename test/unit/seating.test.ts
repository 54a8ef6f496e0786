import { describe, expect, it } from 'vitest';
import { PADDING_LIMIT, seatByLength } from '../../src/engine/seating.js';

function seat(rows: number[], limit = 16): { seated: number[]; next: number } {
  const seated: number[] = [];
  const next = seatByLength(Int32Array.from(rows), rows.length, limit, seated);
  return { seated: [...seated], next };
}

/** Key rows the forward attends over (every seated stream padded to the longest) ÷ the rows they need. */
function padding(rows: number[], seated: number[]): number {
  const own = seated.map((i) => rows[i]);
  return (own.length * Math.max(...own)) / own.reduce((a, b) => a + b, 0);
}

describe('seatByLength: a decode forward seats streams of similar length', () => {
  it('seats every stream when their lengths are close, up to the seat limit', () => {
    expect(seat([300, 280, 320, 310])).toEqual({ seated: [0, 1, 2, 3], next: 4 });
    expect(seat([300, 280, 320, 310], 2)).toEqual({ seated: [0, 1], next: 2 });
  });

  it('leaves a long stream to its own forward, and the next forward starts with it', () => {
    const rows = [300, 300, 1400, 300, 300, 300, 300, 300];
    const first = seat(rows);
    expect(first.seated).toEqual([0, 1, 3, 4, 5, 6, 7]);
    expect(first.next).toBe(2);
    // The next forward, in turn from the one passed over: the long stream first, and the short ones wait.
    const turn = [...rows.slice(2), ...rows.slice(0, 2)];
    const second = seat(turn);
    expect(second.seated[0]).toBe(0);
    expect(padding(turn, second.seated)).toBeLessThanOrEqual(PADDING_LIMIT);
  });

  it('never pads a forward past the limit, and always seats the stream whose turn it is', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let t = 0; t < 200; t++) {
      const rows = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => 1 + Math.floor(rand() * 2000));
      const { seated, next } = seat(rows, 8);
      expect(seated[0]).toBe(0);
      expect(seated.length).toBeLessThanOrEqual(8);
      if (seated.length > 1) expect(padding(rows, seated)).toBeLessThanOrEqual(PADDING_LIMIT);
      // The next turn starts at a stream not seated now (or past them all).
      expect(seated).not.toContain(next);
      expect(next).toBeGreaterThan(0);
    }
  });
});
