/** A minimal GGUF v2/v3 writer for tests: hand-made files that truncation and corruption tests can cut. */
import { writeFileSync } from 'node:fs';

export const enum GgufValueType {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}

type Scalar = number | bigint | boolean | string;

export type GgufValue =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: Scalar }
  | { type: GgufValueType.ARRAY; elementType: GgufValueType; items: Scalar[] | GgufValue[] };

export interface GgufTensorSpec {
  name: string;
  /** Innermost first, as GGUF stores them. */
  dims: number[];
  type: number;
  data: Uint8Array;
}

export interface GgufSpec {
  version?: number;
  metadata: Record<string, GgufValue>;
  tensors: GgufTensorSpec[];
  alignment?: number;
}

export const kv = {
  u32: (value: number): GgufValue => ({ type: GgufValueType.U32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.I32, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.F32, value }),
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  strs: (items: string[]): GgufValue => ({ type: GgufValueType.ARRAY, elementType: GgufValueType.STRING, items }),
  f32s: (items: number[]): GgufValue => ({ type: GgufValueType.ARRAY, elementType: GgufValueType.F32, items }),
  i32s: (items: number[]): GgufValue => ({ type: GgufValueType.ARRAY, elementType: GgufValueType.I32, items }),
};

class Bytes {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v: number | bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  pad(alignment: number): void { this.push(Buffer.alloc((alignment - (this.length % alignment)) % alignment)); }
  concat(): Buffer { return Buffer.concat(this.chunks); }
}

function writeScalar(out: Bytes, type: GgufValueType, value: unknown): void {
  const b = Buffer.alloc(8);
  switch (type) {
    case GgufValueType.U8: b.writeUInt8(value as number); return out.push(b.subarray(0, 1));
    case GgufValueType.I8: b.writeInt8(value as number); return out.push(b.subarray(0, 1));
    case GgufValueType.U16: b.writeUInt16LE(value as number); return out.push(b.subarray(0, 2));
    case GgufValueType.I16: b.writeInt16LE(value as number); return out.push(b.subarray(0, 2));
    case GgufValueType.U32: b.writeUInt32LE(value as number); return out.push(b.subarray(0, 4));
    case GgufValueType.I32: b.writeInt32LE(value as number); return out.push(b.subarray(0, 4));
    case GgufValueType.F32: b.writeFloatLE(value as number); return out.push(b.subarray(0, 4));
    case GgufValueType.F64: b.writeDoubleLE(value as number); return out.push(b);
    case GgufValueType.U64: b.writeBigUInt64LE(BigInt(value as number)); return out.push(b);
    case GgufValueType.I64: b.writeBigInt64LE(BigInt(value as number)); return out.push(b);
    case GgufValueType.BOOL: b.writeUInt8(value ? 1 : 0); return out.push(b.subarray(0, 1));
    case GgufValueType.STRING: return out.str(value as string);
    case GgufValueType.ARRAY: throw new Error('arrays go through writeValue');
  }
}

function writeValue(out: Bytes, v: GgufValue, withType = true): void {
  if (withType) out.u32(v.type);
  if (v.type !== GgufValueType.ARRAY) return writeScalar(out, v.type, v.value);
  out.u32(v.elementType);
  out.u64(v.items.length);
  for (const item of v.items) {
    if (v.elementType === GgufValueType.ARRAY) writeValue(out, item as GgufValue, false);
    else writeScalar(out, v.elementType, item);
  }
}

export function encodeGguf(spec: GgufSpec): Buffer {
  const alignment = spec.alignment ?? 32;
  const out = new Bytes();
  out.push(Buffer.from('GGUF', 'ascii'));
  out.u32(spec.version ?? 3);
  out.u64(spec.tensors.length);
  out.u64(Object.keys(spec.metadata).length);
  for (const [key, value] of Object.entries(spec.metadata)) {
    out.str(key);
    writeValue(out, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of spec.tensors) {
    offsets.push(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  spec.tensors.forEach((t, i) => {
    out.str(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(t.type);
    out.u64(offsets[i]);
  });
  out.pad(alignment);
  for (const t of spec.tensors) {
    out.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.length));
    out.pad(alignment);
  }
  return out.concat();
}

export function writeGguf(path: string, spec: GgufSpec): Buffer {
  const bytes = encodeGguf(spec);
  writeFileSync(path, bytes);
  return bytes;
}
