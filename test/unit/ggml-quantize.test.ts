import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/model/builder/sources/gguf/ggml-types.js';
import { quantizeQ4_0, quantizeQ4_K, quantizeQ8_0 } from './ggml-quantize.js';

describe('ggml reference quantizers, read back by our GGUF reader', () => {
  const w = Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 5)) - 0.3);
  const blockMax = (b: number) => Math.max(...w.subarray(b * 32, b * 32 + 32).map(Math.abs));

  it('Q8_0: 34-byte blocks, every value within half a step (max|x| / 127) plus fp16 scale rounding', () => {
    const bytes = quantizeQ8_0(w);
    expect(bytes.length).toBe((w.length / 32) * 34);
    const d = dequantize(8, bytes, w.length);
    for (let i = 0; i < w.length; i++) expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(blockMax(i >> 5) * (0.5 / 127 + 1e-3));
  });

  it('Q4_0: 18-byte blocks, the largest value maps to code 0 exactly, the rest within a step of max|x| / 8', () => {
    const bytes = quantizeQ4_0(w);
    expect(bytes.length).toBe((w.length / 32) * 18);
    const d = dequantize(2, bytes, w.length);
    for (let b = 0; b < w.length / 32; b++) {
      const m = blockMax(b);
      const at = b * 32 + w.subarray(b * 32, b * 32 + 32).findIndex((x) => Math.abs(x) === m);
      expect(Math.abs(d[at] - w[at])).toBeLessThanOrEqual(m * 1e-3);
      // Half a step, except a value near -max, which clips to code 15 (7/8 of the other side): up to a step.
      for (let i = b * 32; i < b * 32 + 32; i++) {
        const bound = Math.abs(w[i]) > (m * 7.5) / 8 && Math.sign(w[i]) !== Math.sign(w[at]) ? m / 8 : m / 16;
        expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(bound + m * 1e-3);
      }
    }
  });

  it('Q4_0 puts element j in the low nibble of byte j and element j + 16 in its high nibble', () => {
    // d = 8 / -8 = -1: code = 8 - x.
    const block = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? 8 : j < 16 ? 1 : -2));
    const bytes = quantizeQ4_0(block);
    expect(bytes[0] | (bytes[1] << 8)).toBe(0xbc00); // fp16 -1
    expect(bytes[2]).toBe(0 | (10 << 4));
    expect(bytes[3]).toBe(7 | (10 << 4));
  });

  it('Q4_K: 144-byte super-blocks of 256, less error than Q4_0 on the same values', () => {
    const big = Float32Array.from({ length: 4 * 256 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 5)) + Math.cos(i * 0.011) - 0.3);
    const bytes = quantizeQ4_K(big);
    expect(bytes.length).toBe((big.length / 256) * 144);
    const rms = (d: Float32Array) => Math.sqrt(d.reduce((s, x, i) => s + (x - big[i]) ** 2, 0) / big.length);
    const k = rms(dequantize(12, bytes, big.length));
    const amax = Math.max(...big.map(Math.abs));
    // Within a fraction of the 4-bit step of the data's range, and better than one scale per 32 around zero.
    expect(k).toBeLessThan((amax * 2) / 15 / 2);
    expect(k).toBeLessThan(rms(dequantize(2, quantizeQ4_0(big), big.length)));
  });
});
