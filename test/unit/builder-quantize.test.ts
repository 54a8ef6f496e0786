import { describe, expect, it } from 'vitest';
import { dequantizeNBits, quantizeNBits, toHalf } from '../../src/model/builder/quantize.js';

describe('toHalf', () => {
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001],
    [6.103515625e-5, 0x0400],
    [1 + 2 ** -11, 0x3c00], // a tie rounds to even
    [1 + 3 * 2 ** -11, 0x3c02],
  ])('%d -> %i', (value, bits) => expect(toHalf(value)).toBe(bits));

  it('keeps NaN a NaN', () => expect(toHalf(NaN) & 0x7fff).toBeGreaterThan(0x7c00));
});

describe('quantizeNBits', () => {
  const n = 3;
  const k = 80; // not a multiple of the block: the last block is padded
  const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 7)));
  const blockIndices = (r: number, b: number, block: number) => Array.from({ length: Math.min(block, k - b * block) }, (_, j) => r * k + b * block + j);

  it.each([
    [8, 1 / 127],
    [4, 1 / 7],
  ] as const)('%i bits symmetric round-trips within half a step of each block', (bits, step) => {
    const d = dequantizeNBits(quantizeNBits(w, n, k, bits, 32), n, k, bits, 32);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < 3; b++) {
        const idx = blockIndices(r, b, 32);
        const amax = Math.max(...idx.map((i) => Math.abs(w[i])));
        for (const i of idx) expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(amax * step * 0.5 + 1e-6);
      }
    }
  });

  it.each([4, 8] as const)('%i bits with zero points: every element within one step of its range, less error than symmetric', (bits) => {
    const sq = (a: Float32Array) => a.reduce((s, x, i) => s + (x - w[i]) ** 2, 0);
    for (const block of [16, 32, 64]) {
      const q = quantizeNBits(w, n, k, bits, block, true);
      const d = dequantizeNBits(q, n, k, bits, block);
      const levels = (1 << bits) - 1;
      for (let r = 0; r < n; r++) {
        for (let b = 0; b < q.blocks; b++) {
          const idx = blockIndices(r, b, block);
          const lo = Math.min(0, ...idx.map((i) => w[i]));
          const hi = Math.max(0, ...idx.map((i) => w[i]));
          // The chosen range is the full one shrunk by at most 22%: clipping costs at most that much of it.
          for (const i of idx) expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(((hi - lo) / levels) * 0.5 + (hi - lo) * 0.22 + 1e-6);
        }
      }
      expect(sq(d)).toBeLessThan(sq(dequantizeNBits(quantizeNBits(w, n, k, bits, block), n, k, bits, block)));
    }
  });

  it('packs 4-bit codes low nibble first and one zero point per block, each row starting on a byte', () => {
    // Three blocks of 16 whose ranges are exact multiples of 0.1: codes 0..15 with zero points 0, 15 and 5.
    const row = Float32Array.from({ length: 48 }, (_, i) => ((i % 16) - [0, 15, 5][Math.floor(i / 16)]) / 10);
    const two = new Float32Array(96);
    two.set(row);
    two.set(row, 48);
    const q = quantizeNBits(two, 2, 48, 4, 16, true);
    expect(q.blocks).toBe(3);
    expect([...q.packed.subarray(0, 8)]).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    expect(q.packed.length).toBe(2 * 3 * 8);
    expect([...q.zeroPoints!]).toEqual([0xf0, 0x05, 0xf0, 0x05]);
    for (const s of q.scales) expect(s).toBeCloseTo(0.1, 6);
    expect(Math.max(...dequantizeNBits(q, 2, 48, 4, 16).map((x, i) => Math.abs(x - two[i])))).toBeLessThan(1e-6);
  });

  it('keeps a block of zeros exact with zero points', () => {
    const q = quantizeNBits(new Float32Array(64), 2, 32, 4, 32, true);
    expect(dequantizeNBits(q, 2, 32, 4, 32).every((x) => x === 0)).toBe(true);
  });
});
