/**
 * ggml's reference block quantizers (quantize_row_{q8_0,q4_0,q4_K}_ref in ggml-quants.c), so a GGUF of the same
 * weights can be written as Q8_0, Q4_0 or Q4_K as llama.cpp's own quantizer (without an importance matrix) lays it
 * out. Q8_0/Q4_0 follow it to the bit; Q4_K computes in doubles where ggml uses floats.
 * Kept beside gguf-writer.ts: the fixtures and the bench write files with them; the reader side is ggml-types.ts.
 */
import { toHalf } from '../../src/model/builder/quantize.js';
import { halfToFloat } from '../../src/model/builder/sources/half-float.js';

export const GGML_Q4_0 = 2;
export const GGML_Q8_0 = 8;
export const GGML_Q4_K = 12;

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

const QK_K = 256;

/**
 * [rows, cols] row-major → Q4_K super-blocks of 256 (fp16 d and dmin, twelve bytes of 6-bit scales and mins for
 * the eight sub-blocks of 32, then 128 bytes of codes): x ≈ d·sc·q − dmin·m per sub-block, the (scale, min) of each
 * sub-block fitted by make_qkx2_quants.
 */
export function quantizeQ4_K(w: Float32Array): Uint8Array {
  if (w.length % QK_K) throw new Error(`Q4_K needs a multiple of ${QK_K} values (got ${w.length})`);
  const out = new Uint8Array((w.length / QK_K) * 144);
  const L = new Uint8Array(QK_K);
  const scales = new Float64Array(8);
  const mins = new Float64Array(8);
  const weights = new Float64Array(32);
  for (let b = 0; b < w.length / QK_K; b++) {
    const x = w.subarray(b * QK_K, (b + 1) * QK_K);
    const y = out.subarray(b * 144, (b + 1) * 144);
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xs = x.subarray(32 * j, 32 * j + 32);
      const av = Math.sqrt(xs.reduce((s, v) => s + v * v, 0) / 32);
      for (let l = 0; l < 32; l++) weights[l] = av + Math.abs(xs[l]);
      const fit = makeQkx2Quants(xs, weights, L.subarray(32 * j, 32 * j + 32), 15, -1, 0.1, 20);
      scales[j] = fit.scale;
      mins[j] = fit.min;
      maxScale = Math.max(maxScale, fit.scale);
      maxMin = Math.max(maxMin, fit.min);
    }
    const invScale = maxScale > 0 ? 63 / maxScale : 0;
    const invMin = maxMin > 0 ? 63 / maxMin : 0;
    const sc = y.subarray(4, 16);
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, Math.round(invScale * scales[j]));
      const lm = Math.min(63, Math.round(invMin * mins[j]));
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        sc[j - 4] |= (ls >> 4) << 6;
        sc[j] |= (lm >> 4) << 6;
      }
    }
    putHalf(y, 0, maxScale / 63);
    putHalf(y, 2, maxMin / 63);
    // Codes against the scales as stored (fp16 × 6 bits), not as fitted.
    const d = halfToFloat(y[0] | (y[1] << 8));
    const dmin = halfToFloat(y[2] | (y[3] << 8));
    for (let j = 0; j < 8; j++) {
      const s6 = j < 4 ? sc[j] & 63 : (sc[j + 4] & 0xf) | ((sc[j - 4] >> 6) << 4);
      const m6 = j < 4 ? sc[j + 4] & 63 : (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
      const dl = d * s6;
      if (!dl) continue;
      const ml = dmin * m6;
      for (let l = 0; l < 32; l++) L[32 * j + l] = Math.max(0, Math.min(15, Math.round((x[32 * j + l] + ml) / dl)));
    }
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) y[16 + j / 2 + l] = L[j + l] | (L[j + l + 32] << 4);
    }
  }
  return out;
}

/** x ≈ scale·L − min with L in 0..nmax: a weighted least-squares fit over nstep + 1 candidate grids (ggml's make_qkx2_quants). */
function makeQkx2Quants(x: Float32Array, w: Float64Array, L: Uint8Array, nmax: number, rmin: number, rdelta: number, nstep: number): { scale: number; min: number } {
  const n = x.length;
  let min = x[0];
  let max = x[0];
  let sumW = 0;
  let sumX = 0;
  for (let i = 0; i < n; i++) {
    min = Math.min(min, x[i]);
    max = Math.max(max, x[i]);
    sumW += w[i];
    sumX += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0);
    return { scale: 0, min: -min };
  }
  let iscale = nmax / (max - min);
  let scale = 1 / iscale;
  let best = 0;
  for (let i = 0; i < n; i++) {
    L[i] = Math.max(0, Math.min(nmax, Math.round(iscale * (x[i] - min))));
    best += w[i] * (scale * L[i] + min - x[i]) ** 2;
  }
  const aux = new Uint8Array(n);
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, Math.round(iscale * (x[i] - min))));
      aux[i] = l;
      sumL += w[i] * l;
      sumL2 += w[i] * l * l;
      sumXL += w[i] * l * x[i];
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D <= 0) continue;
    let thisScale = (sumW * sumXL - sumX * sumL) / D;
    let thisMin = (sumL2 * sumX - sumL * sumXL) / D;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    let err = 0;
    for (let i = 0; i < n; i++) err += w[i] * (thisScale * aux[i] + thisMin - x[i]) ** 2;
    if (err < best) {
      L.set(aux);
      best = err;
      scale = thisScale;
      min = thisMin;
    }
  }
  return { scale, min: -min };
}

function roundAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}
