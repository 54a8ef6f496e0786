/** Writes .safetensors files for tests and the bench's checkpoints. */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';

export interface RawTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

export function writeSafetensors(path: string, tensors: Record<string, RawTensor>): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, ...Object.values(tensors).map((t) => t.data)]));
}

/** A tensor written by writeSafetensorsStreamed: its bytes are made only when their turn comes. */
export interface LazyTensor {
  name: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  data: () => Uint8Array;
}

/** Writes a file larger than memory would hold at once: the header from the sizes, then each tensor as it is made. */
export function writeSafetensorsStreamed(path: string, tensors: readonly LazyTensor[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, json);
    for (const t of tensors) {
      const data = t.data();
      if (data.byteLength !== t.byteLength) throw new Error(`${t.name}: ${data.byteLength} bytes, the header says ${t.byteLength}`);
      writeSync(fd, data);
    }
  } finally {
    closeSync(fd);
  }
}
