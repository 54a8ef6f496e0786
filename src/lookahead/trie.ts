import { AppError } from '../errors.js';

/**
 * A forest of token tries. Under each key token it stores the n-grams (up to `gramLength` tokens) that followed the
 * key in the inserted data; a node's count is the number of inserted n-grams with that prefix, so counts never grow
 * going down a path.
 *
 * Nodes live in typed-array pools (token, count, parent, first child, next sibling) with a free list; key roots are
 * nodes too, found through a Map. A child is found through an open-addressing hash on (parent, token), because a
 * frequent key has thousands of distinct followers in a large corpus. Memory is bounded by `maxNodes`: past it, a
 * squeeze halves every count and drops the subtrees whose count was 1 (PIA's decay + pruning), repeated until the
 * trie is back under the low-water mark.
 */
export interface TrieOptions {
  /** Tokens stored after each key: the request branch length + 1 (one level is consumed by a 2-token query). */
  gramLength: number;
  /** Node budget; Infinity for short-lived tries. */
  maxNodes?: number;
  /** Sequences are cut at the first of these: EOS is never stored, so never drafted. */
  eosIds?: Iterable<number>;
  /** Never used as a key for output n-grams, nor alone as a retrieval key. */
  stopWords?: Iterable<number>;
}

export class TrieSnapshotError extends AppError {
  override readonly code = 'trie_snapshot_invalid';
}

const NONE = -1;
const MAX_COUNT = 0x7fffffff;
/** After a squeeze the trie holds at most this share of maxNodes, so squeezes stay rare. */
const LOW_WATER = 0.75;
const SNAPSHOT_MAGIC = 0x5254414c; // 'LATR' little-endian
const SNAPSHOT_VERSION = 1;

export class TokenTrie {
  readonly gramLength: number;
  readonly maxNodes: number;
  private readonly eos: Set<number>;
  private readonly stops: Set<number>;
  private readonly roots = new Map<number, number>();
  private tokenOf: Int32Array;
  private countOf: Int32Array;
  private parentOf: Int32Array;
  private childOf: Int32Array;
  private siblingOf: Int32Array;
  /** Hash slots holding node ids (-1 = empty), keyed by (parentOf, tokenOf) of the node; load kept <= 1/2. */
  private slots: Int32Array = new Int32Array(2048).fill(NONE);
  /** High-water mark of the pools; slots below it are live or on the free list. */
  private used = 0;
  private freeHead = NONE;
  private live = 0;

  constructor(options: TrieOptions) {
    if (!Number.isInteger(options.gramLength) || options.gramLength < 1) {
      throw new RangeError(`gramLength must be a positive integer, got ${options.gramLength}`);
    }
    this.gramLength = options.gramLength;
    this.maxNodes = options.maxNodes ?? Infinity;
    if (!(this.maxNodes > this.gramLength + 1)) throw new RangeError(`maxNodes must exceed gramLength + 1`);
    this.eos = new Set(options.eosIds ?? []);
    this.stops = new Set(options.stopWords ?? []);
    const initial = Math.min(1024, Number.isFinite(this.maxNodes) ? this.maxNodes + this.gramLength + 1 : 1024);
    this.tokenOf = new Int32Array(initial);
    this.countOf = new Int32Array(initial);
    this.parentOf = new Int32Array(initial);
    this.childOf = new Int32Array(initial);
    this.siblingOf = new Int32Array(initial);
  }

  /** Live nodes, key roots included. */
  get nodeCount(): number {
    return this.live;
  }

  get keyCount(): number {
    return this.roots.size;
  }

  isStopWord(token: number): boolean {
    return this.stops.has(token);
  }

  isEos(token: number): boolean {
    return this.eos.has(token);
  }

  /**
   * Inserts, under each position's token, the n-gram that follows it (up to gramLength tokens, shorter at the end).
   * The sequence is cut at the first EOS. `output` skips stop-word keys (generated text: PIA's "cut trees").
   * Returns the number of n-grams inserted.
   */
  insert(ids: ArrayLike<number>, output = false, start = 0, end = ids.length): number {
    const cut = this.eosCut(ids, start, end);
    let grams = 0;
    for (let i = start; i < cut - 1; i++) {
      if (output && this.stops.has(ids[i])) continue;
      this.insertGram(ids[i], ids, i + 1, Math.min(i + 1 + this.gramLength, cut));
      grams++;
    }
    return grams;
  }

  /** Index of the first EOS in [start, end), or end. */
  eosCut(ids: ArrayLike<number>, start: number, end: number): number {
    if (this.eos.size === 0) return end;
    for (let i = start; i < end; i++) if (this.eos.has(ids[i])) return i;
    return end;
  }

  /** Adds one n-gram ids[start..end) under `key`; enforces the node budget afterwards. */
  insertGram(key: number, ids: ArrayLike<number>, start: number, end: number): void {
    if (end <= start) return;
    let node = this.roots.get(key);
    if (node === undefined) {
      node = this.alloc(key);
      this.roots.set(key, node);
    } else if (this.countOf[node] < MAX_COUNT) {
      this.countOf[node]++;
    }
    let i = start;
    for (; i < end; i++) {
      const child = this.child(node, ids[i]);
      if (child === NONE) break;
      if (this.countOf[child] < MAX_COUNT) this.countOf[child]++;
      node = child;
    }
    for (; i < end; i++) node = this.addChild(node, ids[i]);
    if (this.live > this.maxNodes) this.squeeze(Math.floor(this.maxNodes * LOW_WATER));
  }

  /** Root node of `key`'s trie, or -1. */
  keyNode(key: number): number {
    return this.roots.get(key) ?? NONE;
  }

  /** Child of `node` holding `token`, or -1. */
  child(node: number, token: number): number {
    const mask = this.slots.length - 1;
    for (let h = hash(node, token) & mask; ; h = (h + 1) & mask) {
      const c = this.slots[h];
      if (c === NONE || (this.parentOf[c] === node && this.tokenOf[c] === token)) return c;
    }
  }

  /** First child, or -1; siblings come newest first. */
  firstChild(node: number): number {
    return this.childOf[node];
  }

  nextSibling(node: number): number {
    return this.siblingOf[node];
  }

  /**
   * Writes into `out` the (up to) `limit` children of `node` with the highest counts, highest first, ties in
   * sibling order; returns how many. out.length must be at least `limit`.
   */
  topChildren(node: number, limit: number, out: Int32Array): number {
    let n = 0;
    for (let c = this.childOf[node]; c !== NONE; c = this.siblingOf[c]) {
      const count = this.countOf[c];
      if (n === limit && count <= this.countOf[out[n - 1]]) continue;
      let i = n < limit ? n++ : n - 1;
      while (i > 0 && this.countOf[out[i - 1]] < count) {
        out[i] = out[i - 1];
        i--;
      }
      out[i] = c;
    }
    return n;
  }

  token(node: number): number {
    return this.tokenOf[node];
  }

  count(node: number): number {
    return this.countOf[node];
  }

  clear(): void {
    this.roots.clear();
    this.used = 0;
    this.freeHead = NONE;
    this.live = 0;
    this.slots.fill(NONE);
  }

  /**
   * Halves every count and drops subtrees whose count was at most 1, until at most `target` nodes remain.
   * Each pass at least halves all counts, so it terminates.
   */
  squeeze(target: number): void {
    while (this.live > target && this.roots.size > 0) {
      for (const [key, root] of this.roots) {
        if (this.countOf[root] <= 1) {
          this.freeSubtree(root);
          this.roots.delete(key);
        } else {
          this.countOf[root] >>= 1;
          this.decayChildren(root);
        }
      }
    }
    this.rehash(this.slots.length);
  }

  /**
   * Serialises the trie: header, then per key its subtree in pre-order as (token, count, childCount) words.
   * Sibling order is kept, so a restored trie drafts exactly as this one.
   */
  snapshot(): Uint8Array {
    const bytes = new Uint8Array(4 * (5 + 3 * this.live));
    const view = new DataView(bytes.buffer);
    view.setUint32(0, SNAPSHOT_MAGIC, true);
    view.setUint32(4, SNAPSHOT_VERSION, true);
    view.setUint32(8, this.gramLength, true);
    view.setUint32(12, this.roots.size, true);
    view.setUint32(16, this.live, true);
    let at = 20;
    const write = (node: number): void => {
      let children = 0;
      for (let c = this.childOf[node]; c !== NONE; c = this.siblingOf[c]) children++;
      view.setInt32(at, this.tokenOf[node], true);
      view.setInt32(at + 4, this.countOf[node], true);
      view.setUint32(at + 8, children, true);
      at += 12;
      for (let c = this.childOf[node]; c !== NONE; c = this.siblingOf[c]) write(c);
    };
    for (const root of this.roots.values()) write(root);
    return bytes;
  }

  /** Rebuilds a trie from `snapshot()` bytes; gramLength comes from the snapshot, the rest from `options`. */
  static restore(bytes: Uint8Array, options: Omit<TrieOptions, 'gramLength'> = {}): TokenTrie {
    if (bytes.byteLength < 20) throw new TrieSnapshotError('trie snapshot is truncated');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== SNAPSHOT_MAGIC) throw new TrieSnapshotError('not a trie snapshot');
    const version = view.getUint32(4, true);
    if (version !== SNAPSHOT_VERSION) throw new TrieSnapshotError(`unsupported trie snapshot version ${version}`);
    const keys = view.getUint32(12, true);
    const nodes = view.getUint32(16, true);
    if (bytes.byteLength !== 4 * (5 + 3 * nodes)) throw new TrieSnapshotError('trie snapshot is truncated');
    const trie = new TokenTrie({ ...options, gramLength: view.getUint32(8, true) });
    // Room for every node up front: a rehash mid-read would miss the subtree being read.
    trie.rehash(2 * nodes);
    let at = 20;
    const read = (parent: number): number => {
      if (at >= bytes.byteLength) throw new TrieSnapshotError('trie snapshot is inconsistent');
      const node = trie.alloc(view.getInt32(at, true));
      trie.countOf[node] = view.getInt32(at + 4, true);
      trie.parentOf[node] = parent;
      if (parent !== NONE) trie.index(node);
      let children = view.getUint32(at + 8, true);
      at += 12;
      let last = NONE;
      for (; children > 0; children--) {
        const child = read(node);
        if (last === NONE) trie.childOf[node] = child;
        else trie.siblingOf[last] = child;
        last = child;
      }
      return node;
    };
    for (let k = 0; k < keys; k++) {
      const root = read(NONE);
      trie.roots.set(trie.tokenOf[root], root);
    }
    if (at !== bytes.byteLength) throw new TrieSnapshotError('trie snapshot is inconsistent');
    if (trie.live > trie.maxNodes) trie.squeeze(Math.floor(trie.maxNodes * LOW_WATER));
    return trie;
  }

  /** A new child with count 1, first among its siblings. */
  private addChild(parent: number, token: number): number {
    if (2 * (this.live + 1) > this.slots.length) this.rehash(2 * this.slots.length);
    const node = this.alloc(token);
    this.parentOf[node] = parent;
    this.siblingOf[node] = this.childOf[parent];
    this.childOf[parent] = node;
    this.index(node);
    return node;
  }

  /** Adds a node to the hash; the caller made room first. */
  private index(node: number): void {
    const mask = this.slots.length - 1;
    let h = hash(this.parentOf[node], this.tokenOf[node]) & mask;
    while (this.slots[h] !== NONE) h = (h + 1) & mask;
    this.slots[h] = node;
  }

  /** Rebuilds the hash from the live tree (after a squeeze freed nodes, or to grow it). */
  private rehash(atLeast: number): void {
    let size = 2048;
    while (size < atLeast || 2 * this.live > size) size *= 2;
    if (size !== this.slots.length) this.slots = new Int32Array(size);
    this.slots.fill(NONE);
    const mask = size - 1;
    const put = (node: number): void => {
      for (let c = this.childOf[node]; c !== NONE; c = this.siblingOf[c]) {
        let h = hash(node, this.tokenOf[c]) & mask;
        while (this.slots[h] !== NONE) h = (h + 1) & mask;
        this.slots[h] = c;
        put(c);
      }
    };
    for (const root of this.roots.values()) put(root);
  }

  private decayChildren(parent: number): void {
    let prev = NONE;
    let c = this.childOf[parent];
    while (c !== NONE) {
      const next = this.siblingOf[c];
      if (this.countOf[c] <= 1) {
        if (prev === NONE) this.childOf[parent] = next;
        else this.siblingOf[prev] = next;
        this.freeSubtree(c);
      } else {
        this.countOf[c] >>= 1;
        this.decayChildren(c);
        prev = c;
      }
      c = next;
    }
  }

  private freeSubtree(node: number): void {
    for (let c = this.childOf[node]; c !== NONE; ) {
      const next = this.siblingOf[c];
      this.freeSubtree(c);
      c = next;
    }
    this.siblingOf[node] = this.freeHead;
    this.freeHead = node;
    this.live--;
  }

  private alloc(token: number): number {
    let node = this.freeHead;
    if (node !== NONE) {
      this.freeHead = this.siblingOf[node];
    } else {
      if (this.used === this.tokenOf.length) this.grow();
      node = this.used++;
    }
    this.tokenOf[node] = token;
    this.countOf[node] = 1;
    this.parentOf[node] = NONE;
    this.childOf[node] = NONE;
    this.siblingOf[node] = NONE;
    this.live++;
    return node;
  }

  private grow(): void {
    const size = this.tokenOf.length * 2;
    const widen = (a: Int32Array): Int32Array => {
      const b = new Int32Array(size);
      b.set(a);
      return b;
    };
    this.tokenOf = widen(this.tokenOf);
    this.countOf = widen(this.countOf);
    this.parentOf = widen(this.parentOf);
    this.childOf = widen(this.childOf);
    this.siblingOf = widen(this.siblingOf);
  }
}

function hash(parent: number, token: number): number {
  let h = Math.imul(parent, 0x9e3779b1) ^ token;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}
