import { closeSync, fstatSync } from 'node:fs';
import { ModelLoadError } from '../../../../errors.js';
import { openForRead, readExactly } from '../read-bytes.js';
import { GGML_TYPES, isSupportedGgmlType } from './ggml-types.js';

/** "GGUF" read as a little-endian u32. */
const GGUF_MAGIC = 0x46554747;
const DEFAULT_ALIGNMENT = 32;
/** Header reads go through a window this large, so a header with a 150k-token vocabulary takes a few reads. */
const WINDOW_BYTES = 1 << 20;

export interface GgufTensorInfo {
  readonly name: string;
  /** Dimensions innermost first, as GGUF lists them (ne[0] = columns). */
  readonly dims: readonly number[];
  readonly type: number;
  readonly elements: number;
  /** Absolute byte offset in the file. */
  readonly offset: number;
  /** Null when the type is one this project does not read. */
  readonly byteLength: number | null;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly metadata: Map<string, unknown>;
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  readonly alignment: number;
  readonly dataOffset: number;
}

const enum ValueType {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}

/** Sequential little-endian reads over a file through a sliding window; runs past the end are truncation errors. */
class Cursor {
  private window = new Uint8Array(0);
  private view = new DataView(this.window.buffer);
  private windowStart = 0;
  pos = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(private readonly fd: number, readonly fileSize: number, readonly path: string) {}

  /** Makes bytes [pos, pos+n) available and returns their index in the window. */
  private need(n: number, what: string): number {
    if (this.pos + n > this.fileSize) {
      throw new ModelLoadError(`${this.path} is truncated: ${what} at byte ${this.pos} needs ${n} bytes, the file has ${this.fileSize}`);
    }
    if (this.pos < this.windowStart || this.pos + n > this.windowStart + this.window.length) {
      const length = Math.min(Math.max(n, WINDOW_BYTES), this.fileSize - this.pos);
      this.window = new Uint8Array(length);
      readExactly(this.fd, this.window, this.pos, this.path);
      this.view = new DataView(this.window.buffer);
      this.windowStart = this.pos;
    }
    const at = this.pos - this.windowStart;
    this.pos += n;
    return at;
  }

  u8(what: string): number { const at = this.need(1, what); return this.view.getUint8(at); }
  i8(what: string): number { const at = this.need(1, what); return this.view.getInt8(at); }
  u16(what: string): number { const at = this.need(2, what); return this.view.getUint16(at, true); }
  i16(what: string): number { const at = this.need(2, what); return this.view.getInt16(at, true); }
  u32(what: string): number { const at = this.need(4, what); return this.view.getUint32(at, true); }
  i32(what: string): number { const at = this.need(4, what); return this.view.getInt32(at, true); }
  f32(what: string): number { const at = this.need(4, what); return this.view.getFloat32(at, true); }
  f64(what: string): number { const at = this.need(8, what); return this.view.getFloat64(at, true); }
  u64(what: string): number | bigint { const at = this.need(8, what); return safe(this.view.getBigUint64(at, true)); }
  i64(what: string): number | bigint { const at = this.need(8, what); return safe(this.view.getBigInt64(at, true)); }

  /** A u64 that must be a count or offset JavaScript can hold exactly. */
  size(what: string): number {
    const v = this.u64(what);
    if (typeof v !== 'number') throw new ModelLoadError(`${this.path}: ${what} ${v} is out of range`);
    return v;
  }

  string(what: string): string {
    const length = this.size(`${what} length`);
    if (length > this.fileSize) throw new ModelLoadError(`${this.path} is corrupt: ${what} claims ${length} bytes`);
    const at = this.need(length, what);
    return this.decoder.decode(this.window.subarray(at, at + length));
  }
}

function safe(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

function readScalar(c: Cursor, type: number, what: string): unknown {
  switch (type) {
    case ValueType.U8: return c.u8(what);
    case ValueType.I8: return c.i8(what);
    case ValueType.U16: return c.u16(what);
    case ValueType.I16: return c.i16(what);
    case ValueType.U32: return c.u32(what);
    case ValueType.I32: return c.i32(what);
    case ValueType.F32: return c.f32(what);
    case ValueType.F64: return c.f64(what);
    case ValueType.U64: return c.u64(what);
    case ValueType.I64: return c.i64(what);
    case ValueType.BOOL: return c.u8(what) !== 0;
    case ValueType.STRING: return c.string(what);
    case ValueType.ARRAY: return readArray(c, what);
    default: throw new ModelLoadError(`${c.path} is corrupt: ${what} has unknown value type ${type}`);
  }
}

/** Numeric arrays come back as typed arrays (token scores and types are large), others as plain arrays. */
function readArray(c: Cursor, what: string): unknown {
  const type = c.u32(`${what} element type`);
  const count = c.size(`${what} count`);
  if (count > c.fileSize) throw new ModelLoadError(`${c.path} is corrupt: ${what} claims ${count} elements`);
  const typed = (make: (n: number) => { [i: number]: number }, read: () => number): unknown => {
    const arr = make(count);
    for (let i = 0; i < count; i++) arr[i] = read();
    return arr;
  };
  switch (type) {
    case ValueType.U8: return typed((n) => new Uint8Array(n), () => c.u8(what));
    case ValueType.I8: return typed((n) => new Int8Array(n), () => c.i8(what));
    case ValueType.U16: return typed((n) => new Uint16Array(n), () => c.u16(what));
    case ValueType.I16: return typed((n) => new Int16Array(n), () => c.i16(what));
    case ValueType.U32: return typed((n) => new Uint32Array(n), () => c.u32(what));
    case ValueType.I32: return typed((n) => new Int32Array(n), () => c.i32(what));
    case ValueType.F32: return typed((n) => new Float32Array(n), () => c.f32(what));
    case ValueType.F64: return typed((n) => new Float64Array(n), () => c.f64(what));
    default: {
      const out: unknown[] = new Array(count);
      for (let i = 0; i < count; i++) out[i] = readScalar(c, type, what);
      return out;
    }
  }
}

/** Reads a GGUF v2/v3 header: metadata, tensor infos, alignment and data offset. Tensor data stays on disk. */
export function readGgufFile(path: string): GgufFile {
  const fd = openForRead(path);
  try {
    const c = new Cursor(fd, fstatSync(fd).size, path);
    if (c.fileSize < 4 || c.u32('magic') !== GGUF_MAGIC) throw new ModelLoadError(`${path} is not a GGUF file (bad magic)`);
    const version = c.u32('version');
    if (version !== 2 && version !== 3) {
      const hint = version > 0xffff ? ' (a big-endian file?)' : '';
      throw new ModelLoadError(`${path}: GGUF version ${version} is not supported (only 2 and 3)${hint}`);
    }
    const tensorCount = c.size('tensor count');
    const kvCount = c.size('metadata count');
    const metadata = new Map<string, unknown>();
    for (let i = 0; i < kvCount; i++) {
      const key = c.string('metadata key');
      const type = c.u32(`type of ${key}`);
      metadata.set(key, readScalar(c, type, `metadata ${key}`));
    }
    const alignment = metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT;
    if (typeof alignment !== 'number' || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw new ModelLoadError(`${path}: general.alignment ${String(alignment)} is not a power of two`);
    }

    const infos: Omit<GgufTensorInfo, 'offset'>[] = [];
    const relOffsets: number[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = c.string('tensor name');
      const nDims = c.u32(`dimension count of ${name}`);
      if (nDims === 0 || nDims > 4) throw new ModelLoadError(`${path}: tensor ${name} has ${nDims} dimensions`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(c.size(`dimension of ${name}`));
      const type = c.u32(`type of ${name}`);
      relOffsets.push(c.size(`offset of ${name}`));
      const elements = dims.reduce((a, b) => a * b, 1);
      let byteLength: number | null = null;
      if (isSupportedGgmlType(type)) {
        const { blockElements, blockBytes } = GGML_TYPES[type];
        if (dims[0] % blockElements !== 0) {
          throw new ModelLoadError(`${path}: tensor ${name} has ${dims[0]} columns, not a multiple of the ${blockElements}-element block of its type`);
        }
        byteLength = (elements / blockElements) * blockBytes;
      }
      infos.push({ name, dims, type, elements, byteLength });
    }
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    infos.forEach((info, i) => {
      if (relOffsets[i] % alignment !== 0) throw new ModelLoadError(`${path}: tensor ${info.name} is not aligned to ${alignment} bytes`);
      const offset = dataOffset + relOffsets[i];
      if (info.byteLength !== null && offset + info.byteLength > c.fileSize) {
        throw new ModelLoadError(`${path} is truncated: tensor ${info.name} ends at byte ${offset + info.byteLength}, the file has ${c.fileSize}`);
      }
      tensors.set(info.name, { ...info, offset });
    });
    return { path, version, fileSize: c.fileSize, metadata, tensors, alignment, dataOffset };
  } finally {
    closeSync(fd);
  }
}
