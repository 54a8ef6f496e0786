import { closeSync, fstatSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ModelLoadError } from '../../../errors.js';
import { decodeBF16, decodeF16 } from './half-float.js';
import { openForRead, readBytes, readExactly } from './read-bytes.js';

const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** A JSON header larger than this is not a real checkpoint header (real ones are kilobytes to a few MB). */
const MAX_HEADER_BYTES = 256 << 20;

export interface SafetensorsTensor {
  readonly file: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Absolute byte offset of the data in `file`. */
  readonly offset: number;
  readonly byteLength: number;
}

/** The tensors of one safetensors file or of a sharded set; data is read only when asked for. */
export interface SafetensorsSet {
  readonly files: readonly string[];
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** The tensor as fp32. Throws ModelLoadError when absent or when its bytes are no longer in the file. */
  read(name: string): Float32Array;
}

function parseHeader(path: string): Map<string, SafetensorsTensor> {
  const fd = openForRead(path);
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) throw new ModelLoadError(`${path} is truncated: ${fileSize} bytes, no safetensors header`);
    const lengthBytes = new Uint8Array(8);
    readExactly(fd, lengthBytes, 0, path);
    const headerLength = Number(Buffer.from(lengthBytes.buffer).readBigUInt64LE(0));
    if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > fileSize) {
      throw new ModelLoadError(`${path} is truncated or not safetensors: header length ${headerLength}, file size ${fileSize}`);
    }
    const headerBytes = new Uint8Array(headerLength);
    readExactly(fd, headerBytes, 8, path);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder().decode(headerBytes));
    } catch (err) {
      throw new ModelLoadError(`${path}: safetensors header is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) {
      throw new ModelLoadError(`${path}: safetensors header is not a JSON object`);
    }
    const dataStart = 8 + headerLength;
    const dataSize = fileSize - dataStart;
    const tensors = new Map<string, SafetensorsTensor>();
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      tensors.set(name, validateEntry(path, name, entry, dataStart, dataSize));
    }
    return tensors;
  } finally {
    closeSync(fd);
  }
}

function validateEntry(path: string, name: string, entry: unknown, dataStart: number, dataSize: number): SafetensorsTensor {
  const bad = (why: string): ModelLoadError => new ModelLoadError(`${path}: tensor ${name}: ${why}`);
  if (entry === null || typeof entry !== 'object') throw bad('header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw bad(`dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) throw bad(`bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw bad(`bad data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as number[];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const byteLength = elements * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (end - begin !== byteLength) throw bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape needs ${byteLength}`);
  if (end > dataSize) throw new ModelLoadError(`${path} is truncated: tensor ${name} ends at data byte ${end}, the file holds ${dataSize}`);
  return { file: path, dtype: dtype as SafetensorsDtype, shape: shape as number[], offset: dataStart + begin, byteLength };
}

function readTensor(t: SafetensorsTensor): Float32Array {
  const bytes = readBytes(t.file, t.offset, t.byteLength);
  if (t.dtype === 'F32') return new Float32Array(bytes.buffer);
  const half = new Uint16Array(bytes.buffer);
  const out = new Float32Array(half.length);
  if (t.dtype === 'F16') decodeF16(half, out);
  else decodeBF16(half, out);
  return out;
}

function makeSet(files: string[], tensors: Map<string, SafetensorsTensor>): SafetensorsSet {
  return {
    files,
    tensors,
    read(name: string): Float32Array {
      const t = tensors.get(name);
      if (t === undefined) throw new ModelLoadError(`tensor ${name} is not in ${files.join(', ')}`);
      return readTensor(t);
    },
  };
}

/** Opens one .safetensors file: reads and validates its header only. */
export function openSafetensors(path: string): SafetensorsSet {
  return makeSet([path], parseHeader(path));
}

/** Opens a sharded checkpoint through its `model.safetensors.index.json` (weight_map: tensor → shard file). */
export function openSafetensorsIndex(indexPath: string): SafetensorsSet {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(readFileSync(indexPath, 'utf8')) as Record<string, unknown>).weight_map;
  } catch (err) {
    throw new ModelLoadError(`cannot read ${indexPath}: ${(err as Error).message}`, { cause: err });
  }
  if (weightMap === null || typeof weightMap !== 'object') throw new ModelLoadError(`${indexPath}: missing field "weight_map"`);
  const shards = new Map<string, Map<string, SafetensorsTensor>>();
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string') throw new ModelLoadError(`${indexPath}: weight_map entry for ${name} is not a file name`);
    const shardPath = join(dirname(indexPath), shard);
    let shardTensors = shards.get(shardPath);
    if (shardTensors === undefined) {
      shardTensors = parseHeader(shardPath);
      shards.set(shardPath, shardTensors);
    }
    const t = shardTensors.get(name);
    if (t === undefined) throw new ModelLoadError(`${indexPath}: weight_map puts ${name} in ${shard}, which does not hold it`);
    tensors.set(name, t);
  }
  return makeSet([...shards.keys()], tensors);
}
