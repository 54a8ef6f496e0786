import type { OnnxGraph } from './onnx/graph.js';
import { nbitsSettings, type BuildOptions } from './options.js';
import { quantizeNBits, toHalfArray } from './quantize.js';

/**
 * Emits y = x · Wᵀ (+ b) for a weight in HF layout [out, in], in the requested encoding.
 * fp32/fp16 weights are transposed to [in, out] for MatMul; MatMulNBits takes [out, in] blocks as they are.
 */
export function linear(
  g: OnnxGraph,
  x: string,
  name: string,
  w: Float32Array,
  out: number,
  inp: number,
  options: Pick<BuildOptions, 'dtype' | 'nbits'>,
  bias?: Float32Array,
): string {
  const { dtype } = options;
  let y: string;
  if (dtype === 'q4' || dtype === 'q8') {
    const bits = dtype === 'q4' ? 4 : 8;
    const { blockSize, accuracyLevel, zeroPoints } = nbitsSettings(dtype, options.nbits);
    const q = quantizeNBits(w, out, inp, bits, blockSize, zeroPoints);
    const b = g.initializer(`${name}.qweight`, 'uint8', [out, q.blocks, (blockSize * bits) / 8], q.packed);
    const s = g.initializer(`${name}.scales`, 'float32', [out * q.blocks], q.scales);
    const zp = q.zeroPoints ? [g.initializer(`${name}.zero_points`, 'uint8', [q.zeroPoints.length], q.zeroPoints)] : [];
    y = g.op(
      'MatMulNBits',
      [x, b, s, ...zp],
      { K: { i: inp }, N: { i: out }, bits: { i: bits }, block_size: { i: blockSize }, accuracy_level: { i: accuracyLevel } },
      'com.microsoft',
    );
  } else {
    const t = transpose(w, out, inp);
    const weight =
      dtype === 'fp16'
        ? g.op('Cast', [g.initializer(`${name}.weight16`, 'float16', [inp, out], toHalfArray(t))], { to: { i: 1 } })
        : g.initializer(`${name}.weight`, 'float32', [inp, out], t);
    y = g.op('MatMul', [x, weight]);
  }
  return bias ? g.op('Add', [y, g.initializer(`${name}.bias`, 'float32', [out], bias)]) : y;
}

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/** Concatenates [out_i, in] matrices along out (row-major, so plain concatenation). */
export function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
