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

/** Little-endian fp16 at byte `at`. */
function f16At(u: Uint8Array, at: number): number {
  return halfToFloat(u[at] | (u[at + 1] << 8));
}

function dequantQ4_0(u: Uint8Array, out: Float32Array): void {
  const blocks = out.length / 32;
  for (let b = 0; b < blocks; b++) {
    const base = b * 18;
    const d = f16At(u, base);
    const o = b * 32;
    for (let j = 0; j < 16; j++) {
      const q = u[base + 2 + j];
      out[o + j] = ((q & 0x0f) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

function dequantQ8_0(u: Uint8Array, s8: Int8Array, out: Float32Array): void {
  const blocks = out.length / 32;
  for (let b = 0; b < blocks; b++) {
    const base = b * 34;
    const d = f16At(u, base);
    const o = b * 32;
    for (let j = 0; j < 32; j++) out[o + j] = s8[base + 2 + j] * d;
  }
}

function dequantQ4_K(u: Uint8Array, out: Float32Array): void {
  const blocks = out.length / 256;
  for (let b = 0; b < blocks; b++) {
    const base = b * 144;
    const d = f16At(u, base);
    const dmin = f16At(u, base + 2);
    const sc = base + 4; // 12 bytes: eight 6-bit scales and eight 6-bit mins, packed
    let qs = base + 16;
    let o = b * 256;
    for (let j = 0; j < 8; j++) {
      const scale = j < 4 ? u[sc + j] & 63 : (u[sc + j + 4] & 0x0f) | ((u[sc + j - 4] >> 6) << 4);
      const min = j < 4 ? u[sc + j + 4] & 63 : (u[sc + j + 4] >> 4) | ((u[sc + j] >> 6) << 4);
      const dl = d * scale;
      const ml = dmin * min;
      // Sub-blocks 2k and 2k+1 share 32 bytes: low nibbles, then high nibbles.
      const shift = (j & 1) * 4;
      for (let l = 0; l < 32; l++) out[o + l] = dl * ((u[qs + l] >> shift) & 0x0f) - ml;
      if (j & 1) qs += 32;
      o += 32;
    }
  }
}

function dequantQ6_K(u: Uint8Array, s8: Int8Array, out: Float32Array): void {
  const blocks = out.length / 256;
  for (let b = 0; b < blocks; b++) {
    const base = b * 210;
    let ql = base;
    let qh = base + 128;
    let sc = base + 192;
    const d = f16At(u, base + 208);
    let o = b * 256;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = u[qh + l];
        const lo0 = u[ql + l];
        const lo1 = u[ql + l + 32];
        out[o + l] = d * s8[sc + is] * (((lo0 & 0x0f) | ((h & 3) << 4)) - 32);
        out[o + l + 32] = d * s8[sc + is + 2] * (((lo1 & 0x0f) | (((h >> 2) & 3) << 4)) - 32);
        out[o + l + 64] = d * s8[sc + is + 4] * (((lo0 >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[o + l + 96] = d * s8[sc + is + 6] * (((lo1 >> 4) | (((h >> 6) & 3) << 4)) - 32);
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
  const s8 = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
      dequantQ4_0(bytes, out);
      return out;
    case 8:
      dequantQ8_0(bytes, s8, out);
      return out;
    case 12:
      dequantQ4_K(bytes, out);
      return out;
    case 14:
      dequantQ6_K(bytes, s8, out);
      return out;
  }
}
