/**
 * ggml's reference block quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref in ggml-quants.c), so a GGUF of
 * the same weights can be written as Q8_0 or Q4_0 exactly as llama.cpp's own quantizer would lay it out.
 * Kept beside gguf-writer.ts: the fixtures and the bench write files with them; the reader side is ggml-types.ts.
 */
import { toHalf } from '../../src/model/builder/quantize.js';

export const GGML_Q4_0 = 2;
export const GGML_Q8_0 = 8;

const QK = 32;

function putHalf(out: Uint8Array, at: number, value: number): void {
  const h = toHalf(value);
  out[at] = h & 0xff;
  out[at + 1] = h >> 8;
}

/** [rows, cols] row-major → Q8_0 blocks (fp16 d, 32 × int8): d = max|x| / 127, q = round(x / d). */
export function quantizeQ8_0(w: Float32Array): Uint8Array {
  if (w.length % QK) throw new Error(`Q8_0 needs a multiple of ${QK} values (got ${w.length})`);
  const out = new Uint8Array((w.length / QK) * 34);
  for (let b = 0; b < w.length / QK; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(w[b * QK + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    putHalf(out, b * 34, d);
    // C's roundf: halves away from zero.
    for (let j = 0; j < QK; j++) out[b * 34 + 2 + j] = roundAway(Math.fround(w[b * QK + j] * id)) & 0xff;
  }
  return out;
}

/**
 * [rows, cols] row-major → Q4_0 blocks (fp16 d, 16 bytes: element j in the low nibble of byte j, j + 16 in its high
 * nibble): d = (the value of largest magnitude, signed) / -8, so that value is code 0 and codes -8..7 all serve.
 */
export function quantizeQ4_0(w: Float32Array): Uint8Array {
  if (w.length % QK) throw new Error(`Q4_0 needs a multiple of ${QK} values (got ${w.length})`);
  const out = new Uint8Array((w.length / QK) * 18);
  for (let b = 0; b < w.length / QK; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const x = w[b * QK + j];
      if (Math.abs(x) > amax) {
        amax = Math.abs(x);
        max = x;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    putHalf(out, b * 18, d);
    const code = (x: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(x * id) + 8.5)));
    for (let j = 0; j < QK / 2; j++) out[b * 18 + 2 + j] = code(w[b * QK + j]) | (code(w[b * QK + j + 16]) << 4);
  }
  return out;
}

function roundAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}
