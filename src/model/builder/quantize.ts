/**
 * Weight encodings for smaller builds: IEEE half floats, and the block-wise layout of com.microsoft MatMulNBits
 * (B is [N, blocksPerCol, blockSize*bits/8] with elements of one block packed low nibble first; one float scale
 * per block; optional uint8 zero points packed the same way, else ORT uses the midpoint 2^(bits-1)).
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
  /** [N, ceil(blocks * bits / 8)]: one zero point per block, packed like B (each row starts on a byte); null = symmetric. */
  zeroPoints: Uint8Array | null;
  blocks: number;
}

/** Candidate shrinkings of a block's range: clipping an outlier can lower the block's squared error. */
const RANGE_STEPS = 12;
const RANGE_SHRINK = 0.02;

/**
 * Quantizes a row-major [N, K] weight (HF [out, in] layout) per block of K.
 * Symmetric: scale = max|w| / (2^(bits-1) - 1) around ORT's implied midpoint zero point.
 * Asymmetric (`zeroPoints`): each block maps [lo, hi] onto all 2^bits levels with an integer zero point, choosing
 * among a few shrunken ranges the one with the least squared error; a skewed block then spends no level on values
 * it does not hold (what llama.cpp's Q4_1/Q4_K do with a float min).
 */
export function quantizeNBits(w: Float32Array, n: number, k: number, bits: 4 | 8, blockSize: number, zeroPoints = false): NBitsWeight {
  const blocks = Math.ceil(k / blockSize);
  const blob = (blockSize * bits) / 8;
  const zpRow = Math.ceil((blocks * bits) / 8);
  const packed = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const zps = zeroPoints ? new Uint8Array(n * zpRow) : null;
  const mid = 1 << (bits - 1);
  const levels = (1 << bits) - 1;
  const put = (dst: Uint8Array, at: number, j: number, q: number) => {
    if (bits === 8) dst[at + j] = q;
    else dst[at + (j >> 1)] |= j & 1 ? q << 4 : q;
  };
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) {
      const start = r * k + b * blockSize;
      const end = r * k + Math.min(k, (b + 1) * blockSize);
      let scale: number;
      let zero = mid;
      if (zps) {
        ({ scale, zero } = asymmetricBlock(w, start, end, levels));
        put(zps, r * zpRow, b, zero);
      } else {
        let amax = 0;
        for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(w[i]));
        scale = amax / (mid - 1) || 1;
      }
      scales[r * blocks + b] = scale;
      const base = (r * blocks + b) * blob;
      for (let j = 0; j < blockSize; j++) {
        const i = start + j;
        // Padding past K quantizes to the zero point: it multiplies nothing.
        put(packed, base, j, i < end ? clampLevel(Math.round(w[i] / scale) + zero, levels) : zero);
      }
    }
  }
  return { packed, scales, zeroPoints: zps, blocks };
}

function clampLevel(q: number, levels: number): number {
  return q < 0 ? 0 : q > levels ? levels : q;
}

function asymmetricBlock(w: Float32Array, start: number, end: number, levels: number): { scale: number; zero: number } {
  let lo = 0;
  let hi = 0;
  // The range includes 0, so the zero point is a level and exact zeros (padding too) stay exact.
  for (let i = start; i < end; i++) {
    lo = Math.min(lo, w[i]);
    hi = Math.max(hi, w[i]);
  }
  if (hi === lo) return { scale: 1, zero: 0 };
  let best = { scale: 0, zero: 0 };
  let bestErr = Infinity;
  for (let step = 0; step < RANGE_STEPS; step++) {
    const shrink = 1 - step * RANGE_SHRINK;
    const scale = ((hi - lo) * shrink) / levels;
    const zero = clampLevel(Math.round(-lo * shrink / scale), levels);
    let err = 0;
    for (let i = start; i < end && err < bestErr; i++) {
      const d = w[i] - (clampLevel(Math.round(w[i] / scale) + zero, levels) - zero) * scale;
      err += d * d;
    }
    if (err < bestErr) {
      bestErr = err;
      best = { scale, zero };
    }
  }
  return best;
}

/** The weights a quantized matrix stands for, [N, K] row-major: (q - zero point) * scale. */
export function dequantizeNBits(q: NBitsWeight, n: number, k: number, bits: 4 | 8, blockSize: number): Float32Array {
  const out = new Float32Array(n * k);
  const blob = (blockSize * bits) / 8;
  const zpRow = Math.ceil((q.blocks * bits) / 8);
  const get = (src: Uint8Array, at: number, j: number) => (bits === 8 ? src[at + j] : (src[at + (j >> 1)] >> ((j & 1) * 4)) & 15);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      const b = Math.floor(c / blockSize);
      const zero = q.zeroPoints ? get(q.zeroPoints, r * zpRow, b) : 1 << (bits - 1);
      out[r * k + c] = (get(q.packed, (r * q.blocks + b) * blob, c % blockSize) - zero) * q.scales[r * q.blocks + b];
    }
  }
  return out;
}
