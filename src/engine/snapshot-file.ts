import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TrieSnapshotError } from '../lookahead/index.js';
import type { TextTokenizer } from '../model/tokenizer/types.js';

/**
 * The global-trie snapshot file: an identity header, then the tries (GlobalTries.snapshot). Token ids mean nothing
 * without the vocabulary they came from, so a snapshot is only loaded by a model with the same tokenizer
 * fingerprint and vocabulary size; the n-gram length may differ (the tries are rebuilt to the current one).
 *
 * Header (little-endian): magic u32, format version u32, vocabulary size u32, n-gram length u32, 32-byte
 * fingerprint.
 */
const MAGIC = 0x5350414c; // 'LAPS'
const FORMAT_VERSION = 2;
const HEADER_BYTES = 16 + 32;

export interface SnapshotIdentity {
  /** Hex SHA-256 of the tokenizer's vocabulary (see modelFingerprint). */
  fingerprint: string;
  vocabSize: number;
  gramLength: number;
}

/**
 * What identifies a model's token ids: SHA-256 over every id's text, the special ids and the vocabulary size. Two
 * models that share a tokenizer share ids, so their tries are interchangeable; any other change is caught.
 */
export function modelFingerprint(tok: TextTokenizer): string {
  const hash = createHash('sha256');
  hash.update(`vocab ${tok.vocabSize} bos ${tok.bosTokenId} eos ${tok.eosTokenIds.join(',')}\n`);
  const one = [0];
  for (let id = 0; id < tok.vocabSize; id++) {
    one[0] = id;
    hash.update(tok.decode(one, { skipSpecialTokens: false }));
    hash.update('\u0000');
  }
  return hash.digest('hex');
}

export function encodeSnapshot(identity: SnapshotIdentity, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + body.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, identity.vocabSize, true);
  view.setUint32(12, identity.gramLength, true);
  out.set(Buffer.from(identity.fingerprint, 'hex').subarray(0, 32), 16);
  out.set(body, HEADER_BYTES);
  return out;
}

/** Splits a snapshot file into its identity and the tries; throws TrieSnapshotError on a file of another format. */
export function decodeSnapshot(bytes: Uint8Array): { identity: SnapshotIdentity; body: Uint8Array } {
  if (bytes.byteLength < HEADER_BYTES) throw new TrieSnapshotError('too short for a snapshot header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new TrieSnapshotError('no snapshot identity header (an older or foreign file)');
  const version = view.getUint32(4, true);
  if (version !== FORMAT_VERSION) throw new TrieSnapshotError(`snapshot format version ${version}, this server reads ${FORMAT_VERSION}`);
  return {
    identity: {
      vocabSize: view.getUint32(8, true),
      gramLength: view.getUint32(12, true),
      fingerprint: Buffer.from(bytes.subarray(16, 48)).toString('hex'),
    },
    body: bytes.subarray(HEADER_BYTES),
  };
}

/** Why a snapshot of `found` identity must not be loaded by a model of `ours`, or null when it may. */
export function identityMismatch(found: SnapshotIdentity, ours: SnapshotIdentity): string | null {
  if (found.fingerprint !== ours.fingerprint) return `it was written for another model (tokenizer fingerprint ${found.fingerprint.slice(0, 12)}…, this model's is ${ours.fingerprint.slice(0, 12)}…)`;
  if (found.vocabSize !== ours.vocabSize) return `its vocabulary has ${found.vocabSize} ids, this model's ${ours.vocabSize}`;
  return null;
}

/**
 * Writes atomically and durably: a temp file beside the target, fsynced, renamed over it, and the directory
 * fsynced, so a crash or power cut leaves either the old snapshot or the new one, never half of one.
 */
export function writeSnapshotFile(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    for (let at = 0; at < bytes.byteLength; ) at += writeSync(fd, bytes, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Some filesystems refuse to fsync a directory; the rename itself is still atomic.
  }
}

/** Removes temp files that writers which died mid-write left beside `path` (`<name>.tmp-<pid>`, pid gone or ours). */
export function removeStaleTemps(path: string): string[] {
  const dir = dirname(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // no such directory (yet), or not a directory: nothing left behind there
  }
  const prefix = `${basename(path)}.tmp-`;
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** Moves a snapshot this model must not load out of the way (kept for a human to look at); returns where. */
export function setAside(path: string): string {
  const aside = `${path}.rejected-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(path, aside);
  return aside;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
