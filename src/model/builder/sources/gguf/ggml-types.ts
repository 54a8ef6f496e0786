import { decodeBF16, decodeF16, halfToFloat } from '../half-float.js';

/**
 * ggml tensor types this project dequantises, with their block layout (elements and bytes per block).
 * Quantised formats follow ggml-common.h / ggml-quants.c.
 */
export const GGML_TYPES = {
  0: { name: 'F32', blockElements: 1, blockBytes: 4 },
  1: { name: 'F16', blockElements: 1, blockBytes: 2 },
  2: { name: 'Q4_0', blockElements: 32, blockBytes: 18 },
  8: { name: 'Q8_0', blockElements: 32, blockBytes: 34 },
  12: { name: 'Q4_K', blockElements: 256, blockBytes: 144 },
  14: { name: 'Q6_K', blockElements: 256, blockBytes: 210 },
  30: { name: 'BF16', blockElements: 1, blockBytes: 2 },
} as const satisfies Record<number, { name: string; blockElements: number; blockBytes: number }>;

export type GgmlType = keyof typeof GGML_TYPES;

/** Names of the ggml types we do not read, so errors can say what a file holds. */
const OTHER_TYPE_NAMES: Record<number, string> = {
  3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 13: 'Q5_K', 15: 'Q8_K', 16: 'IQ2_XXS',
  17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16',
  26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

export function isSupportedGgmlType(type: number): type is GgmlType {
  return Object.hasOwn(GGML_TYPES, type);
}

export function ggmlTypeName(type: number): string {
  return isSupportedGgmlType(type) ? GGML_TYPES[type].name : (OTHER_TYPE_NAMES[type] ?? `type ${type}`);
}

function dequantQ4_0(src: DataView, out: Float32Array): void {
  const blocks = out.length / 32;
  for (let b = 0; b < blocks; b++) {
    const base = b * 18;
    const d = halfToFloat(src.getUint16(base, true));
    const o = b * 32;
    for (let j = 0; j < 16; j++) {
      const q = src.getUint8(base + 2 + j);
      out[o + j] = ((q & 0x0f) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

function dequantQ8_0(src: DataView, out: Float32Array): void {
  const blocks = out.length / 32;
  for (let b = 0; b < blocks; b++) {
    const base = b * 34;
    const d = halfToFloat(src.getUint16(base, true));
    const o = b * 32;
    for (let j = 0; j < 32; j++) out[o + j] = src.getInt8(base + 2 + j) * d;
  }
}

/** The j-th 6-bit (scale, min) pair packed in Q4_K's 12 scale bytes starting at `at`. */
function q4kScaleMin(src: DataView, at: number, j: number): [number, number] {
  if (j < 4) return [src.getUint8(at + j) & 63, src.getUint8(at + j + 4) & 63];
  const hi = src.getUint8(at + j + 4);
  return [(hi & 0x0f) | ((src.getUint8(at + j - 4) >> 6) << 4), (hi >> 4) | ((src.getUint8(at + j) >> 6) << 4)];
}

function dequantQ4_K(src: DataView, out: Float32Array): void {
  const blocks = out.length / 256;
  for (let b = 0; b < blocks; b++) {
    const base = b * 144;
    const d = halfToFloat(src.getUint16(base, true));
    const dmin = halfToFloat(src.getUint16(base + 2, true));
    const scales = base + 4;
    let qs = base + 16;
    let o = b * 256;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = q4kScaleMin(src, scales, is);
      const [sc2, m2] = q4kScaleMin(src, scales, is + 1);
      for (let l = 0; l < 32; l++) {
        const q = src.getUint8(qs + l);
        out[o + l] = d * sc1 * (q & 0x0f) - dmin * m1;
        out[o + 32 + l] = d * sc2 * (q >> 4) - dmin * m2;
      }
      qs += 32;
      o += 64;
    }
  }
}

function dequantQ6_K(src: DataView, out: Float32Array): void {
  const blocks = out.length / 256;
  for (let b = 0; b < blocks; b++) {
    const base = b * 210;
    let ql = base;
    let qh = base + 128;
    let sc = base + 192;
    const d = halfToFloat(src.getUint16(base + 208, true));
    let o = b * 256;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src.getUint8(qh + l);
        const lo0 = src.getUint8(ql + l);
        const lo1 = src.getUint8(ql + l + 32);
        out[o + l] = d * src.getInt8(sc + is) * (((lo0 & 0x0f) | ((h & 3) << 4)) - 32);
        out[o + l + 32] = d * src.getInt8(sc + is + 2) * (((lo1 & 0x0f) | (((h >> 2) & 3) << 4)) - 32);
        out[o + l + 64] = d * src.getInt8(sc + is + 4) * (((lo0 >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[o + l + 96] = d * src.getInt8(sc + is + 6) * (((lo1 >> 4) | (((h >> 6) & 3) << 4)) - 32);
      }
      o += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

/** Decodes `elements` values of `type` from `bytes` (4-byte aligned, as readBytes gives) to fp32. */
export function dequantize(type: GgmlType, bytes: Uint8Array, elements: number): Float32Array {
  const out = new Float32Array(elements);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 0:
      return new Float32Array(bytes.buffer, bytes.byteOffset, elements);
    case 1:
      decodeF16(new Uint16Array(bytes.buffer, bytes.byteOffset, elements), out);
      return out;
    case 30:
      decodeBF16(new Uint16Array(bytes.buffer, bytes.byteOffset, elements), out);
      return out;
    case 2:
      dequantQ4_0(view, out);
      return out;
    case 8:
      dequantQ8_0(view, out);
      return out;
    case 12:
      dequantQ4_K(view, out);
      return out;
    case 14:
      dequantQ6_K(view, out);
      return out;
  }
}
