import { AppError } from '../errors.js';

/**
 * A forest of token tries. Under each key token it stores the n-grams (up to `gramLength` tokens) that followed the
 * key in the inserted data; a node's count is the number of inserted n-grams with that prefix, so counts never grow
 * going down a path.
 *
 * Nodes live in typed-array pools (token, count, parent, first child, siblings) with a free list; key roots are
 * nodes too, found through a Map. A frequent key has thousands of distinct followers in a large corpus, so:
 * - a child is found through an open-addressing hash on (parent, token);
 * - sibling lists stay sorted by count, descending, so the best k children are the first k. A second hash maps
 *   (parent, count) to the first sibling with that count, so counting one more n-gram through a node moves it to
 *   the front of its equal-count run in O(1) (the LFU-bucket trick).
 * Memory is bounded by `maxNodes`: past it, a squeeze halves every count and drops the subtrees whose count was 1
 * (PIA's decay + pruning), repeated until the trie is back under the low-water mark.
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
/** A deleted run-head slot: lookups probe past it. */
const TOMB = -2;
/** Hash slots of an empty trie: small, since every session and tenant starts with one (they grow at half load). */
const MIN_SLOTS = 256;
const MAX_COUNT = 0x7fffffff;
/** After a squeeze the trie holds at most this share of maxNodes, so squeezes stay rare. */
const LOW_WATER = 0.75;
const SNAPSHOT_MAGIC = 0x5254414c; // 'LATR' little-endian
const SNAPSHOT_VERSION = 1;
/** Longest n-gram a trie stores: branch length (at most 64) + 1. Bounds every recursion over a trie's depth. */
export const MAX_GRAM_LENGTH = 65;

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
  /** Previous sibling; the first child's entry points at the last child, so appending is O(1). */
  private prevOf: Int32Array;
  /** Hash slots holding node ids (-1 = empty), keyed by the node's (parent, token); load kept <= 1/2. */
  private slots: Int32Array = new Int32Array(MIN_SLOTS).fill(NONE);
  /** Hash slots holding the head of each equal-count run of siblings, keyed by the node's (parent, count). */
  private runs: Int32Array = new Int32Array(MIN_SLOTS).fill(NONE);
  /** Run slots not empty (tombstones included). */
  private runsUsed = 0;
  /** High-water mark of the pools; slots below it are live or on the free list. */
  private used = 0;
  private freeHead = NONE;
  private live = 0;
  private epochs = 0;

  constructor(options: TrieOptions) {
    if (!Number.isInteger(options.gramLength) || options.gramLength < 1 || options.gramLength > MAX_GRAM_LENGTH) {
      throw new RangeError(`gramLength must be a positive integer, got ${options.gramLength}`);
    }
    this.gramLength = options.gramLength;
    this.maxNodes = options.maxNodes ?? Infinity;
    if (!(this.maxNodes > this.gramLength + 1)) throw new RangeError(`maxNodes must exceed gramLength + 1`);
    this.eos = new Set(options.eosIds ?? []);
    this.stops = new Set(options.stopWords ?? []);
    const initial = Math.min(64, Number.isFinite(this.maxNodes) ? this.maxNodes + this.gramLength + 1 : 64);
    this.tokenOf = new Int32Array(initial);
    this.countOf = new Int32Array(initial);
    this.parentOf = new Int32Array(initial);
    this.childOf = new Int32Array(initial);
    this.siblingOf = new Int32Array(initial);
    this.prevOf = new Int32Array(initial);
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

  /**
   * The n-grams keyed at positions [from, to) of `ids` whose first EOS is at `cut` (see eosCut): a slice of what
   * insert does, for callers that spread a long sequence over several slices.
   */
  insertPositions(ids: ArrayLike<number>, from: number, to: number, cut: number): void {
    const last = Math.min(to, cut - 1);
    for (let i = from; i < last; i++) this.insertGram(ids[i], ids, i + 1, Math.min(i + 1 + this.gramLength, cut));
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
    let node = this.openGram(key);
    for (let i = start; i < end; i++) node = this.extendGram(node, ids[i]);
    this.enforceBudget();
  }

  /**
   * Counts one more n-gram under `key` and returns its key node. With `extendGram` this builds an n-gram token by
   * token as it becomes known; call `enforceBudget` afterwards (a squeeze frees nodes: see `epoch`).
   */
  openGram(key: number): number {
    const node = this.roots.get(key);
    if (node === undefined) {
      const root = this.alloc(key);
      this.roots.set(key, root);
      return root;
    }
    if (this.countOf[node] < MAX_COUNT) this.countOf[node]++;
    return node;
  }

  /** Counts the n-gram being built at `node` through its child `token` (created if new) and returns that child. */
  extendGram(node: number, token: number): number {
    const child = this.child(node, token);
    if (child === NONE) return this.addChild(node, token);
    this.bump(node, child);
    return child;
  }

  /** Squeezes the trie if it is over its node budget. */
  enforceBudget(): void {
    if (this.live > this.maxNodes) this.squeeze(Math.floor(this.maxNodes * LOW_WATER));
  }

  /** Changes whenever nodes are freed (squeeze, clear): node ids held from before may be stale. */
  get epoch(): number {
    return this.epochs;
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
    this.epochs++;
    this.roots.clear();
    this.used = 0;
    this.freeHead = NONE;
    this.live = 0;
    this.rebuild();
  }

  /**
   * Halves every count and drops subtrees whose count was at most 1, until at most `target` nodes remain.
   * Each pass at least halves all counts, so it terminates.
   */
  squeeze(target: number): void {
    this.epochs++;
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
    this.rebuild();
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

  /**
   * Rebuilds a trie from `snapshot()` bytes; the rest of the options from `options`. Without `gramLength` the
   * snapshot's n-gram length is kept; with a shorter one, deeper nodes are dropped (counts stay exact: a node counts
   * the n-grams through its prefix), with a longer one the stored n-grams are simply shorter than new ones.
   * Tokens at or past `vocabSize` (when given) make the snapshot invalid: they would index past the embedding.
   * Nesting deeper than the snapshot's own n-gram length is refused before it can exhaust the stack.
   */
  static restore(bytes: Uint8Array, options: Omit<TrieOptions, 'gramLength'> & { gramLength?: number; vocabSize?: number } = {}): TokenTrie {
    if (bytes.byteLength < 20) throw new TrieSnapshotError('trie snapshot is truncated');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== SNAPSHOT_MAGIC) throw new TrieSnapshotError('not a trie snapshot');
    const version = view.getUint32(4, true);
    if (version !== SNAPSHOT_VERSION) throw new TrieSnapshotError(`unsupported trie snapshot version ${version}`);
    const stored = view.getUint32(8, true);
    if (stored < 1 || stored > MAX_GRAM_LENGTH) throw new TrieSnapshotError(`trie snapshot n-gram length ${stored} is out of range`);
    const keys = view.getUint32(12, true);
    const nodes = view.getUint32(16, true);
    if (bytes.byteLength !== 4 * (5 + 3 * nodes)) throw new TrieSnapshotError('trie snapshot is truncated');
    const { vocabSize, ...trieOptions } = options;
    const trie = new TokenTrie({ ...trieOptions, gramLength: options.gramLength ?? stored });
    let at = 20;
    const read = (parent: number, depth: number): number => {
      if (at >= bytes.byteLength) throw new TrieSnapshotError('trie snapshot is inconsistent');
      if (depth > stored) throw new TrieSnapshotError(`trie snapshot nests deeper than its n-gram length ${stored}`);
      const token = view.getInt32(at, true);
      if (token < 0 || (vocabSize !== undefined && token >= vocabSize)) {
        throw new TrieSnapshotError(`trie snapshot holds token id ${token}, outside the vocabulary (${vocabSize ?? 'any'} ids)`);
      }
      const count = view.getInt32(at + 4, true);
      let children = view.getUint32(at + 8, true);
      at += 12;
      // Past the wanted n-gram length the subtree is read (to stay in step) but not kept.
      const node = depth <= trie.gramLength ? trie.alloc(token) : NONE;
      if (node !== NONE) {
        trie.countOf[node] = count;
        trie.parentOf[node] = parent;
      }
      let last = NONE;
      for (; children > 0; children--) {
        const child = read(node, depth + 1);
        if (child === NONE) continue;
        if (last === NONE) trie.childOf[node] = child;
        else trie.siblingOf[last] = child;
        last = child;
      }
      return node;
    };
    for (let k = 0; k < keys; k++) {
      const root = read(NONE, 0);
      trie.roots.set(trie.tokenOf[root], root);
    }
    if (at !== bytes.byteLength) throw new TrieSnapshotError('trie snapshot is inconsistent');
    trie.rebuild();
    if (trie.live > trie.maxNodes) trie.squeeze(Math.floor(trie.maxNodes * LOW_WATER));
    return trie;
  }

  /**
   * Counts one more n-gram through `x`, a child of `parent`: x moves to the front of its equal-count run, so the
   * list stays sorted once its count is one higher.
   */
  private bump(parent: number, x: number): void {
    const c = this.countOf[x];
    if (c >= MAX_COUNT) return;
    const slot = this.runSlot(parent, c);
    const head = this.runs[slot];
    if (head === x) {
      const next = this.siblingOf[x];
      this.runs[slot] = next !== NONE && this.countOf[next] === c ? next : TOMB;
    } else {
      this.unlink(parent, x);
      this.linkBefore(parent, x, head);
    }
    this.countOf[x] = c + 1;
    if (!this.continuesRun(parent, x)) this.addRun(x);
  }

  /** A new child with count 1, last among its siblings (every live count is at least 1). */
  private addChild(parent: number, token: number): number {
    const x = this.alloc(token);
    this.parentOf[x] = parent;
    const first = this.childOf[parent];
    if (first === NONE) {
      this.childOf[parent] = x;
      this.prevOf[x] = x;
    } else {
      const last = this.prevOf[first];
      this.siblingOf[last] = x;
      this.prevOf[x] = last;
      this.prevOf[first] = x;
    }
    if (2 * this.live > this.slots.length) this.growSlots();
    const mask = this.slots.length - 1;
    let h = hash(parent, token) & mask;
    while (this.slots[h] !== NONE) h = (h + 1) & mask;
    this.slots[h] = x;
    if (!this.continuesRun(parent, x)) this.addRun(x);
    return x;
  }

  /** True when x's previous sibling has the same count (so x is not the head of its run). */
  private continuesRun(parent: number, x: number): boolean {
    return x !== this.childOf[parent] && this.countOf[this.prevOf[x]] === this.countOf[x];
  }

  /** Slot of the head of `parent`'s children with count `count`; the run must exist. */
  private runSlot(parent: number, count: number): number {
    const mask = this.runs.length - 1;
    for (let h = hash(parent, count) & mask; ; h = (h + 1) & mask) {
      const n = this.runs[h];
      if (n === NONE) throw new Error('token trie: run index out of sync');
      if (n !== TOMB && this.parentOf[n] === parent && this.countOf[n] === count) return h;
    }
  }

  private addRun(x: number): void {
    if (2 * (this.runsUsed + 1) > this.runs.length) this.rehashRuns();
    const mask = this.runs.length - 1;
    let h = hash(this.parentOf[x], this.countOf[x]) & mask;
    while (this.runs[h] >= 0) h = (h + 1) & mask;
    if (this.runs[h] === NONE) this.runsUsed++;
    this.runs[h] = x;
  }

  private unlink(parent: number, x: number): void {
    const first = this.childOf[parent];
    const next = this.siblingOf[x];
    if (x === first) {
      this.childOf[parent] = next;
      if (next !== NONE) this.prevOf[next] = this.prevOf[x];
      return;
    }
    const prev = this.prevOf[x];
    this.siblingOf[prev] = next;
    if (next !== NONE) this.prevOf[next] = prev;
    else this.prevOf[first] = prev;
  }

  /** Links x right before `at`, which is in the list. */
  private linkBefore(parent: number, x: number, at: number): void {
    const prev = this.prevOf[at];
    this.siblingOf[x] = at;
    this.prevOf[x] = prev;
    this.prevOf[at] = x;
    if (at === this.childOf[parent]) this.childOf[parent] = x;
    else this.siblingOf[prev] = x;
  }

  /**
   * Rebuilds both hashes and the back links from the sibling lists, sized for growth (after a squeeze freed
   * nodes, after a restore, or when a hash fills up).
   */
  private rebuild(): void {
    let size = MIN_SLOTS;
    while (size < 4 * this.live) size *= 2;
    if (size !== this.slots.length) {
      this.slots = new Int32Array(size);
      this.runs = new Int32Array(size);
    }
    this.slots.fill(NONE);
    this.runs.fill(NONE);
    this.runsUsed = 0;
    const mask = size - 1;
    const visit = (parent: number): void => {
      let prev = NONE;
      for (let c = this.childOf[parent]; c !== NONE; prev = c, c = this.siblingOf[c]) {
        let h = hash(parent, this.tokenOf[c]) & mask;
        while (this.slots[h] !== NONE) h = (h + 1) & mask;
        this.slots[h] = c;
        if (prev === NONE || this.countOf[prev] !== this.countOf[c]) {
          h = hash(parent, this.countOf[c]) & mask;
          while (this.runs[h] !== NONE) h = (h + 1) & mask;
          this.runs[h] = c;
          this.runsUsed++;
        }
        if (prev !== NONE) this.prevOf[c] = prev;
        visit(c);
      }
      if (prev !== NONE) this.prevOf[this.childOf[parent]] = prev;
    };
    for (const root of this.roots.values()) visit(root);
  }

  /**
   * Doubles the child hash by re-inserting its own entries: a scan of the table, not a walk of the tree (which
   * stalled a decode step for ~100 ms per rebuild at 10^5 nodes).
   */
  private growSlots(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2).fill(NONE);
    const mask = this.slots.length - 1;
    for (let i = 0; i < old.length; i++) {
      const c = old[i];
      if (c < 0) continue;
      let h = hash(this.parentOf[c], this.tokenOf[c]) & mask;
      while (this.slots[h] !== NONE) h = (h + 1) & mask;
      this.slots[h] = c;
    }
  }

  /** Clears the run hash's tombstones (growing it if the live heads need room), from its own entries. */
  private rehashRuns(): void {
    const old = this.runs;
    let heads = 0;
    for (let i = 0; i < old.length; i++) if (old[i] >= 0) heads++;
    let size = old.length;
    while (4 * (heads + 1) > size) size *= 2;
    this.runs = new Int32Array(size).fill(NONE);
    this.runsUsed = 0;
    const mask = size - 1;
    for (let i = 0; i < old.length; i++) {
      const n = old[i];
      if (n < 0) continue;
      let h = hash(this.parentOf[n], this.countOf[n]) & mask;
      while (this.runs[h] !== NONE) h = (h + 1) & mask;
      this.runs[h] = n;
      this.runsUsed++;
    }
  }

  private decayChildren(parent: number): void {
    let prev = NONE;
    for (let c = this.childOf[parent]; c !== NONE; prev = c, c = this.siblingOf[c]) {
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
    this.prevOf = widen(this.prevOf);
    this.childOf = widen(this.childOf);
    this.siblingOf = widen(this.siblingOf);
  }
}

function hash(parent: number, token: number): number {
  let h = Math.imul(parent, 0x9e3779b1) ^ token;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}
