import type { CopyIndex } from './copy-index.js';
import type { TokenTrie } from './trie.js';

/** A trie consulted for drafts; `local` = request or session scope (ranked first), otherwise global. */
export interface DraftSource {
  trie: TokenTrie;
  local: boolean;
}

const NONE = -1;
/** A continuation seen after the last two tokens is stronger evidence than one seen after the last token only. */
const BIGRAM_WEIGHT = 4;
/** Mixed score = local * 2^32 + global: local (request/session) counts first, global frequency breaks ties. */
const LOCAL_SCALE = 2 ** 32;
/** The copied continuation outranks every retrieved one (it is the best path, emitted first). */
const COPY_SCORE = Number.MAX_VALUE;

/**
 * The continuations of the root merged over all sources, materialised lazily: a candidate's children are built
 * (from each source's most frequent children) only when it is expanded. Every source is matched twice: after the
 * last two tokens (bigram) and after the last token alone (unigram), and both match sets merge by path.
 * Scores add up over sources, and trie counts never grow down a path, so scores do not either: a best-first
 * selection is ancestor-closed. Storage is reused between steps.
 */
export class CandidateTree {
  size = 0;
  token: Int32Array = new Int32Array(0);
  parent: Int32Array = new Int32Array(0);
  depth: Int32Array = new Int32Array(0);
  firstChild: Int32Array = new Int32Array(0);
  nextSibling: Int32Array = new Int32Array(0);
  local: Float64Array = new Float64Array(0);
  global: Float64Array = new Float64Array(0);
  mix: Float64Array = new Float64Array(0);
  /** Position in the copy source of the candidate's token when it lies on the copied continuation, else -1. */
  copyAt: Int32Array = new Int32Array(0);
  private copy: CopyIndex | null = null;
  /** Per candidate and source slot (2 per source: bigram, unigram), the matching trie node or -1. */
  private src: Int32Array = new Int32Array(0);
  private readonly slots: number;

  constructor(private readonly sources: readonly DraftSource[]) {
    this.slots = 2 * sources.length;
    this.ensure(64);
  }

  /**
   * Starts a step: candidate 0 is the root, matched after (q0, root) and after root alone, and, when `copy` is
   * given, at position `copyPos` of that copy source (whose following tokens become one chain of candidates).
   */
  reset(root: number, q0: number | null, copy: CopyIndex | null = null, copyPos = NONE): void {
    this.size = 0;
    const r = this.add(root, NONE, 0);
    this.copy = copy;
    this.copyAt[r] = copy ? copyPos : NONE;
    for (let s = 0; s < this.sources.length; s++) {
      const trie = this.sources[s].trie;
      if (q0 !== null) {
        const key = trie.keyNode(q0);
        if (key !== NONE) this.src[r * this.slots + 2 * s] = trie.child(key, root);
      }
      // A bare stop word is too common to predict anything on its own.
      if (!trie.isStopWord(root)) this.src[r * this.slots + 2 * s + 1] = trie.keyNode(root);
    }
  }

  /**
   * Builds `c`'s children from the `limit` most frequent children of each of its source nodes. Growth happens before
   * any child is added, so callers holding key arrays must re-read them after this returns `true`.
   */
  expand(c: number, limit: number): boolean {
    const grown = this.ensure(this.size + this.slots * limit + 1);
    const copied = this.copyAt[c] >= 0 ? this.copy!.token(this.copyAt[c] + 1) : NONE;
    if (copied >= 0) {
      const k = this.add(copied, c, this.depth[c] + 1);
      this.nextSibling[k] = this.firstChild[c];
      this.firstChild[c] = k;
      this.copyAt[k] = this.copyAt[c] + 1;
    }
    for (let slot = 0; slot < this.slots; slot++) {
      const node = this.src[c * this.slots + slot];
      if (node === NONE) continue;
      const { trie, local } = this.sources[slot >> 1];
      const weight = slot & 1 ? 1 : BIGRAM_WEIGHT;
      // Sibling lists are sorted by count: the first `limit` are the best.
      let taken = 0;
      for (let t = trie.firstChild(node); t !== NONE && taken < limit; t = trie.nextSibling(t), taken++) {
        const tok = trie.token(t);
        let k = this.firstChild[c];
        while (k !== NONE && this.token[k] !== tok) k = this.nextSibling[k];
        if (k === NONE) {
          k = this.add(tok, c, this.depth[c] + 1);
          this.nextSibling[k] = this.firstChild[c];
          this.firstChild[c] = k;
        }
        this.src[k * this.slots + slot] = t;
        if (local) this.local[k] += weight * trie.count(t);
        else this.global[k] += weight * trie.count(t);
      }
    }
    for (let k = this.firstChild[c]; k !== NONE; k = this.nextSibling[k]) {
      this.mix[k] = this.copyAt[k] >= 0 ? COPY_SCORE : this.local[k] * LOCAL_SCALE + this.global[k];
    }
    return grown;
  }

  /** The child of `c` on the copied continuation, or -1. */
  copyChild(c: number): number {
    for (let k = this.firstChild[c]; k !== NONE; k = this.nextSibling[k]) if (this.copyAt[k] >= 0) return k;
    return NONE;
  }

  private add(tok: number, parent: number, depth: number): number {
    const k = this.size++;
    this.token[k] = tok;
    this.parent[k] = parent;
    this.depth[k] = depth;
    this.firstChild[k] = NONE;
    this.nextSibling[k] = NONE;
    this.local[k] = 0;
    this.global[k] = 0;
    this.mix[k] = 0;
    this.copyAt[k] = NONE;
    this.src.fill(NONE, k * this.slots, (k + 1) * this.slots);
    return k;
  }

  private ensure(capacity: number): boolean {
    if (capacity <= this.token.length) return false;
    const cap = Math.max(capacity, 2 * this.token.length);
    const int = (a: Int32Array, n = cap): Int32Array => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    const float = (a: Float64Array): Float64Array => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.token = int(this.token);
    this.parent = int(this.parent);
    this.depth = int(this.depth);
    this.firstChild = int(this.firstChild);
    this.nextSibling = int(this.nextSibling);
    this.local = float(this.local);
    this.global = float(this.global);
    this.mix = float(this.mix);
    this.copyAt = int(this.copyAt);
    this.src = int(this.src, cap * this.slots);
    return true;
  }
}
