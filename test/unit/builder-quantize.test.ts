import { describe, expect, it } from 'vitest';
import { quantizeNBits, toHalf } from '../../src/model/builder/quantize.js';

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

  function dequantize(bits: 4 | 8, block: number): Float32Array {
    const q = quantizeNBits(w, n, k, bits, block);
    const blob = (block * bits) / 8;
    const out = new Float32Array(n * k);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < k; c++) {
        const b = Math.floor(c / block);
        const j = c % block;
        const byte = q.packed[(r * q.blocks + b) * blob + (bits === 8 ? j : j >> 1)];
        const v = bits === 8 ? byte : j & 1 ? byte >> 4 : byte & 15;
        out[r * k + c] = (v - (1 << (bits - 1))) * q.scales[r * q.blocks + b];
      }
    }
    return out;
  }

  it.each([
    [8, 1 / 127],
    [4, 1 / 7],
  ] as const)('%i bits round-trips within half a step of each block', (bits, step) => {
    const d = dequantize(bits, 32);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < 3; b++) {
        const idx = Array.from({ length: Math.min(32, k - b * 32) }, (_, j) => r * k + b * 32 + j);
        const amax = Math.max(...idx.map((i) => Math.abs(w[i])));
        for (const i of idx) expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(amax * step * 0.5 + 1e-6);
      }
    }
  });
});
