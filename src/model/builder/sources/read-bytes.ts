import { closeSync, openSync, readSync } from 'node:fs';
import { ModelLoadError } from '../../../errors.js';

/** readSync moves at most this much per call (Node limits a single read to 2 GiB - 1). */
const MAX_CHUNK = 1 << 30;

/**
 * Reads `length` bytes at `offset` of an open file into `dst` (which it fills completely).
 * A short read means the file shrank or was cut: a ModelLoadError naming the path.
 */
export function readExactly(fd: number, dst: Uint8Array, offset: number, path: string): void {
  let done = 0;
  while (done < dst.length) {
    const n = readSync(fd, dst, done, Math.min(MAX_CHUNK, dst.length - done), offset + done);
    if (n === 0) {
      throw new ModelLoadError(`${path} is truncated: wanted ${dst.length} bytes at offset ${offset}, the file ends after ${done}`);
    }
    done += n;
  }
}

/** Opens a model file for reading; a missing or unreadable file is a ModelLoadError naming it. */
export function openForRead(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw new ModelLoadError(`cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads a byte range of a file into a fresh, 0-aligned buffer (so typed views of any element size fit). */
export function readBytes(path: string, offset: number, length: number): Uint8Array {
  const dst = new Uint8Array(new ArrayBuffer(length));
  const fd = openForRead(path);
  try {
    readExactly(fd, dst, offset, path);
  } finally {
    closeSync(fd);
  }
  return dst;
}
