/** 16-bit float decoding shared by the safetensors and GGUF readers. */

let f16Table: Float32Array | null = null;

/** All 65536 half-precision values, so decoding a tensor is one lookup per element. */
function halfTable(): Float32Array {
  if (f16Table !== null) return f16Table;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24; // zero and subnormals
    else if (exp === 31) table[h] = frac === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1024 + frac) * 2 ** (exp - 25);
  }
  f16Table = table;
  return table;
}

export function halfToFloat(bits: number): number {
  return halfTable()[bits & 0xffff];
}

export function decodeF16(src: Uint16Array, dst: Float32Array): void {
  const table = halfTable();
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
}

/** bfloat16 is the high half of a float32. */
export function decodeBF16(src: Uint16Array, dst: Float32Array): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
}
