/**
 * Weight encodings for smaller builds: IEEE half floats, and the block-wise layout of com.microsoft MatMulNBits
 * (B is [N, blocksPerCol, blockSize*bits/8] with elements of one block packed low nibble first; one float scale
 * per block; no zero-point input, so ORT uses the midpoint 2^(bits-1)).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even float32 → float16 bits. */
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function toHalfArray(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalf(values[i]);
  return out;
}

export interface NBitsWeight {
  /** [N, blocks, blockSize * bits / 8] */
  packed: Uint8Array;
  /** [N * blocks] */
  scales: Float32Array;
  blocks: number;
}

/** Quantizes a row-major [N, K] weight (HF [out, in] layout) symmetrically per block of K. */
export function quantizeNBits(w: Float32Array, n: number, k: number, bits: 4 | 8, blockSize: number): NBitsWeight {
  const blocks = Math.ceil(k / blockSize);
  const blob = (blockSize * bits) / 8;
  const packed = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const qmax = (1 << (bits - 1)) - 1;
  const zero = 1 << (bits - 1);
  const levels = (1 << bits) - 1;
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) {
      const start = r * k + b * blockSize;
      const end = r * k + Math.min(k, (b + 1) * blockSize);
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(w[i]));
      const scale = amax / qmax || 1;
      scales[r * blocks + b] = scale;
      const base = (r * blocks + b) * blob;
      for (let j = 0; j < blockSize; j++) {
        const i = start + j;
        // Padding past K quantizes to the zero point: it multiplies nothing.
        const q = i < end ? Math.min(levels, Math.max(0, Math.round(w[i] / scale) + zero)) : zero;
        if (bits === 8) packed[base + j] = q;
        else packed[base + (j >> 1)] |= j & 1 ? q << 4 : q;
      }
    }
  }
  return { packed, scales, blocks };
}
