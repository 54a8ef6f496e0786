import { AppError } from '../errors.js';

/**
 * A forest of token tries. Under each key token it stores the n-grams (up to `gramLength` tokens) that followed the
 * key in the inserted data; a node's count is the number of inserted n-grams with that prefix, so counts never grow
 * going down a path. Sibling lists are kept sorted by count (descending), which makes "the best k children" the
 * first k of a list and keeps frequent tokens near the head for lookups.
 *
 * Nodes live in typed-array pools (token, count, first child, next sibling) with a free list; key roots are nodes
 * too, found through a Map. Memory is bounded by `maxNodes`: past it, a squeeze halves every count and drops the
 * subtrees whose count was 1 (PIA's decay + pruning), repeated until the trie is back under the low-water mark.
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
  private childOf: Int32Array;
  private siblingOf: Int32Array;
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
      const child = this.bumpChild(node, ids[i]);
      if (child === NONE) break;
      node = child;
    }
    if (i < end) {
      let tail = this.appendChild(node, ids[i]);
      for (i++; i < end; i++) {
        const next = this.alloc(ids[i]);
        this.childOf[tail] = next;
        tail = next;
      }
    }
    if (this.live > this.maxNodes) this.squeeze(Math.floor(this.maxNodes * LOW_WATER));
  }

  /** Root node of `key`'s trie, or -1. */
  keyNode(key: number): number {
    return this.roots.get(key) ?? NONE;
  }

  /** Child of `node` holding `token`, or -1. */
  child(node: number, token: number): number {
    for (let c = this.childOf[node]; c !== NONE; c = this.siblingOf[c]) if (this.tokenOf[c] === token) return c;
    return NONE;
  }

  /** First (most frequent) child, or -1. */
  firstChild(node: number): number {
    return this.childOf[node];
  }

  /** Next sibling (equally or less frequent), or -1. */
  nextSibling(node: number): number {
    return this.siblingOf[node];
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
    let at = 20;
    const read = (): number => {
      if (at >= bytes.byteLength) throw new TrieSnapshotError('trie snapshot is inconsistent');
      const node = trie.alloc(view.getInt32(at, true));
      trie.countOf[node] = view.getInt32(at + 4, true);
      let children = view.getUint32(at + 8, true);
      at += 12;
      let last = NONE;
      for (; children > 0; children--) {
        const child = read();
        if (last === NONE) trie.childOf[node] = child;
        else trie.siblingOf[last] = child;
        last = child;
      }
      return node;
    };
    for (let k = 0; k < keys; k++) {
      const root = read();
      trie.roots.set(trie.tokenOf[root], root);
    }
    if (at !== bytes.byteLength) throw new TrieSnapshotError('trie snapshot is inconsistent');
    if (trie.live > trie.maxNodes) trie.squeeze(Math.floor(trie.maxNodes * LOW_WATER));
    return trie;
  }

  /**
   * Finds `token` among `parent`'s children and counts one more n-gram through it, moving it ahead of the
   * siblings it now outnumbers so the list stays sorted. Returns -1 when absent.
   */
  private bumpChild(parent: number, token: number): number {
    let prev = NONE;
    let runHead = NONE;
    let runHeadPrev = NONE;
    for (let c = this.childOf[parent]; c !== NONE; prev = c, c = this.siblingOf[c]) {
      if (runHead === NONE || this.countOf[c] !== this.countOf[runHead]) {
        runHead = c;
        runHeadPrev = prev;
      }
      if (this.tokenOf[c] !== token) continue;
      if (this.countOf[c] >= MAX_COUNT) return c;
      this.countOf[c]++;
      if (runHead !== c) {
        this.siblingOf[prev] = this.siblingOf[c];
        this.siblingOf[c] = runHead;
        if (runHeadPrev === NONE) this.childOf[parent] = c;
        else this.siblingOf[runHeadPrev] = c;
      }
      return c;
    }
    return NONE;
  }

  /** A new child with count 1 goes last: every live count is at least 1. */
  private appendChild(parent: number, token: number): number {
    const node = this.alloc(token);
    let c = this.childOf[parent];
    if (c === NONE) {
      this.childOf[parent] = node;
    } else {
      while (this.siblingOf[c] !== NONE) c = this.siblingOf[c];
      this.siblingOf[c] = node;
    }
    return node;
  }

  private decayChildren(parent: number): void {
    let prev = NONE;
    let c = this.childOf[parent];
    while (c !== NONE) {
      const next = this.siblingOf[c];
      if (this.countOf[c] <= 1) {
        // Sorted descending: this child and every later sibling go.
        if (prev === NONE) this.childOf[parent] = NONE;
        else this.siblingOf[prev] = NONE;
        for (let d = c; d !== NONE; ) {
          const after = this.siblingOf[d];
          this.freeSubtree(d);
          d = after;
        }
        return;
      }
      this.countOf[c] >>= 1;
      this.decayChildren(c);
      prev = c;
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
    this.childOf = widen(this.childOf);
    this.siblingOf = widen(this.siblingOf);
  }
}
