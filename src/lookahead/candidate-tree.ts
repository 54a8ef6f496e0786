import { acceptanceCell, isCopyCell, rankClass, UNIGRAM_WEIGHT, type AcceptanceModel } from './acceptance.js';
import type { CopyIndex } from './copy-index.js';
import type { RecycledTable } from './recycled.js';
import type { TokenTrie } from './trie.js';

/** Where a candidate came from, as bits: the request's, session's or tenant's scopes, or the model's own ranking. */
export const ORIGIN_REQUEST = 1;
export const ORIGIN_SESSION = 2;
export const ORIGIN_GLOBAL = 4;
export const ORIGIN_RECYCLED = 8;
const ORIGIN_NAMES = [
  ['request', ORIGIN_REQUEST],
  ['session', ORIGIN_SESSION],
  ['global', ORIGIN_GLOBAL],
  ['recycled', ORIGIN_RECYCLED],
] as const;
export type DraftOrigin = (typeof ORIGIN_NAMES)[number][0];

/**
 * Per source, from counts of accepted draft tokens by ORIGIN_* bits: the tokens it proposed (alone or with others)
 * and those only it proposed.
 */
export function sourceShares(byOrigin: ArrayLike<number>): { source: DraftOrigin; proposed: number; only: number }[] {
  return ORIGIN_NAMES.map(([source, bit]) => {
    let proposed = 0;
    for (let mask = 0; mask < byOrigin.length; mask++) if (mask & bit) proposed += byOrigin[mask];
    return { source, proposed, only: byOrigin[bit] ?? 0 };
  });
}

/** A trie consulted for drafts; `local` = request or session scope, otherwise global. */
export interface DraftSource {
  trie: TokenTrie;
  local: boolean;
  origin: number;
}

const NONE = -1;
/** Most copy matches a step drafts from (see Proposer.match). */
export const MAX_COPIES = 8;

/**
 * The continuations of the root merged over all sources, materialised lazily: a candidate's children are built
 * (from each source's most frequent children, and from the continuation of each copy match) only when it is
 * expanded. Every trie is matched twice: after the last two tokens (bigram) and after the last token alone
 * (unigram), and both match sets merge by path, as do copy continuations that agree.
 *
 * The recycled table (recycled.ts) adds, under every candidate, the model's top-k successors of its token, and it
 * informs the rest: a candidate's rank there is part of its evidence, and a successor the tries hold beyond the
 * `limit` most frequent children is looked up there by that token (LogitSpec's guesses as retrieval keys). A
 * candidate no trie path reaches is re-anchored: its children come from the tries keyed by its own last one or two
 * tokens, so branches go on past where the first match stops.
 *
 * Each candidate gets the probability that verification accepts it: its parent's times its own conditional one,
 * which the acceptance model estimates from its evidence (acceptance.ts). Conditional probabilities are at most 1,
 * so probabilities never grow down a path and a best-first selection is ancestor-closed. Storage is reused between
 * steps.
 */
export class CandidateTree {
  size = 0;
  token: Int32Array = new Int32Array(0);
  parent: Int32Array = new Int32Array(0);
  depth: Int32Array = new Int32Array(0);
  firstChild: Int32Array = new Int32Array(0);
  nextSibling: Int32Array = new Int32Array(0);
  /** Probability that the candidate is accepted (the root's is 1). */
  prob: Float64Array = new Float64Array(0);
  /** Acceptance cell and raw estimate of the candidate (see AcceptanceModel). */
  cell: Int32Array = new Int32Array(0);
  raw: Float64Array = new Float64Array(0);
  /** 0, or 1 + how often the model's first choice after the parent was confirmed, when the candidate is that choice. */
  confirmed: Uint8Array = new Uint8Array(0);
  /** ORIGIN_* bits of the sources that proposed the candidate. */
  origin: Uint8Array = new Uint8Array(0);
  /**
   * Per candidate and copy match (MAX_COPIES slots), the position in that match's copy source of the candidate's
   * token when it lies on that match's continuation, else -1. Slots are ordered longest match first.
   */
  private copyAt: Int32Array = new Int32Array(0);
  /** Longest copy match through the candidate, counting the path from the root (0 = none), and how many run through it. */
  private copyLength: Int32Array = new Int32Array(0);
  private copyVotes: Int32Array = new Int32Array(0);
  /** Best weighted trie share of the candidate, and its slot's flags and parent count. */
  private share: Float64Array = new Float64Array(0);
  private shareSlot: Int32Array = new Int32Array(0);
  private shareParent: Int32Array = new Int32Array(0);
  private copies: readonly CopyIndex[] = [];
  private copyOrigins: ArrayLike<number> = [];
  /** The two context tokens before the root (nearest first; -1 = none). */
  private q0 = NONE;
  private q1 = NONE;
  private readonly copyLengths = new Int32Array(MAX_COPIES);
  private copyCount = 0;
  /** Per candidate and source slot (2 per source: bigram, unigram), the matching trie node or -1. */
  private src: Int32Array = new Int32Array(0);
  private readonly slots: number;

  constructor(
    private readonly sources: readonly DraftSource[],
    private readonly model: AcceptanceModel,
    private readonly recycled: RecycledTable | null = null,
    /** The request's tag in the recycled table: its own rankings are worth more (RecycledTable.agreement). */
    private readonly tag = 0,
  ) {
    this.slots = 2 * sources.length;
    this.ensure(64);
  }

  /**
   * Starts a step: candidate 0 is the root, matched after (q0, root) and after root alone, and at each copy match
   * `m < count`: position `positions[m]` of `copies[m]`, matched on `lengths[m]` context tokens (longest first),
   * whose following tokens become a chain of candidates (proposed by `origins[m]`).
   */
  reset(
    root: number,
    q0: number | null,
    copies: readonly CopyIndex[] = [],
    positions: ArrayLike<number> = [],
    lengths: ArrayLike<number> = [],
    count = 0,
    origins: ArrayLike<number> = [],
    q1: number | null = null,
  ): void {
    this.size = 0;
    this.q0 = q0 ?? NONE;
    this.q1 = q1 ?? NONE;
    const r = this.add(root, NONE, 0);
    this.prob[r] = 1;
    this.copies = copies;
    this.copyOrigins = origins;
    this.copyCount = Math.min(count, MAX_COPIES);
    for (let m = 0; m < this.copyCount; m++) {
      this.copyAt[r * MAX_COPIES + m] = positions[m];
      this.copyLengths[m] = lengths[m];
    }
    if (this.copyCount > 0) this.copyLength[r] = this.copyLengths[0];
    this.copyVotes[r] = this.copyCount;
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
   * Builds `c`'s children from the `limit` most frequent children of each of its source nodes and from the copy
   * continuations through it, and scores them. Growth happens before any child is added, so callers holding key
   * arrays must re-read them after this returns `true`.
   */
  expand(c: number, limit: number): boolean {
    const table = this.recycled;
    const guesses = table ? Math.min(table.k, limit) : 0;
    const grown = this.ensure(this.size + this.slots * limit + this.copyCount + guesses + 1);
    const first = this.size;
    for (let m = 0; m < this.copyCount; m++) {
      const at = this.copyAt[c * MAX_COPIES + m];
      const copied = at >= 0 ? this.copies[m].token(at + 1) : NONE;
      if (copied < 0) continue;
      const k = this.childWith(c, copied);
      this.copyAt[k * MAX_COPIES + m] = at + 1;
      // Once the parent is accepted, the match is one token longer.
      if (this.copyLength[k] === 0) this.copyLength[k] = this.copyLengths[m] + this.depth[k];
      this.copyVotes[k]++;
      this.origin[k] |= this.copyOrigins[m] ?? 0;
    }
    for (let slot = 0; slot < this.slots; slot++) {
      const node = this.src[c * this.slots + slot];
      if (node === NONE) continue;
      const { trie } = this.sources[slot >> 1];
      const weight = slot & 1 ? UNIGRAM_WEIGHT : 1;
      const parentCount = trie.count(node);
      // Sibling lists are sorted by count: the first `limit` are the best.
      let taken = 0;
      for (let t = trie.firstChild(node); t !== NONE && taken < limit; t = trie.nextSibling(t), taken++) {
        this.support(this.childWith(c, trie.token(t)), slot, t, weight, parentCount);
      }
    }
    const parentToken = this.token[c];
    const prev1 = this.before(c, 1);
    const prev2 = this.before(c, 2);
    const ranking = table ? table.find(parentToken, prev1, prev2) : NONE;
    const known = ranking !== NONE;
    for (let rank = 0; known && rank < guesses; rank++) {
      const tok = table!.successor(ranking, rank);
      if (tok < 0) break;
      const k = this.childWith(c, tok);
      this.origin[k] |= ORIGIN_RECYCLED;
      // The model's guess as a retrieval key: a continuation the tries hold past the `limit` most frequent.
      for (let slot = 0; slot < this.slots; slot++) {
        const node = this.src[c * this.slots + slot];
        if (node === NONE || this.src[k * this.slots + slot] !== NONE) continue;
        const { trie } = this.sources[slot >> 1];
        const t = trie.child(node, tok);
        if (t !== NONE) this.support(k, slot, t, slot & 1 ? UNIGRAM_WEIGHT : 1, trie.count(node));
      }
    }
    for (let k = first; k < this.size; k++) if (this.share[k] === 0) this.reanchor(k, parentToken);
    const agreement = known ? table!.agreement(ranking, prev1, prev2, this.tag) : 0;
    const copyAtParent = this.copyLength[c] > 0;
    const votes = Math.max(1, this.copyVotes[c]);
    for (let k = this.firstChild[c]; k !== NONE; k = this.nextSibling[k]) {
      const slot = this.shareSlot[k];
      const supported = this.share[k] > 0;
      const rank = known ? table!.rankOf(ranking, this.token[k]) : NONE;
      const cell = acceptanceCell(
        this.copyLength[k],
        this.copyVotes[k] / votes,
        copyAtParent,
        supported && (slot & 1) === 0,
        supported && this.sources[slot >> 1].local,
        supported ? this.shareParent[k] : 0,
        this.share[k],
        this.depth[k],
        rankClass(rank, known, agreement),
      );
      this.confirmed[k] = rank === 0 ? 1 + table!.confirmations(ranking) : 0;
      this.cell[k] = cell;
      this.raw[k] = isCopyCell(cell) || !supported ? 1 : this.share[k];
      this.prob[k] = this.prob[c] * this.model.probability(cell, this.raw[k], this.depth[k], this.confirmed[k]);
    }
    return grown;
  }

  /** Whether candidate `k` lies on the continuation of one of this step's copy matches in `index`. */
  copiesFrom(k: number, index: CopyIndex): boolean {
    for (let m = 0; m < this.copyCount; m++) if (this.copies[m] === index && this.copyAt[k * MAX_COPIES + m] >= 0) return true;
    return false;
  }

  /** The token `n` places before candidate `c`'s (n ≤ 2): an ancestor's, or the context's before the root. */
  private before(c: number, n: number): number {
    for (; n > 0 && c !== 0; n--) c = this.parent[c];
    return n === 0 ? this.token[c] : n === 1 ? this.q0 : this.q1;
  }

  /** Trie node `t` (in `slot`, under a parent seen `parentCount` times) supports candidate `k`. */
  private support(k: number, slot: number, t: number, weight: number, parentCount: number): void {
    const { trie, origin } = this.sources[slot >> 1];
    this.src[k * this.slots + slot] = t;
    this.origin[k] |= origin;
    const share = (weight * trie.count(t)) / Math.max(1, parentCount);
    if (share > this.share[k]) {
      this.share[k] = share;
      this.shareSlot[k] = slot;
      this.shareParent[k] = parentCount;
    }
  }

  /**
   * A candidate no trie path reaches (a copy or the model proposed it) looks its own children up as the root's are
   * looked up: after (parent token, its token) and after its token alone.
   */
  private reanchor(k: number, parentToken: number): void {
    const tok = this.token[k];
    for (let s = 0; s < this.sources.length; s++) {
      const trie = this.sources[s].trie;
      const key = trie.keyNode(parentToken);
      if (key !== NONE) this.src[k * this.slots + 2 * s] = trie.child(key, tok);
      if (!trie.isStopWord(tok)) this.src[k * this.slots + 2 * s + 1] = trie.keyNode(tok);
    }
  }

  /** `c`'s child holding `tok`, added if missing. */
  private childWith(c: number, tok: number): number {
    let k = this.firstChild[c];
    while (k !== NONE && this.token[k] !== tok) k = this.nextSibling[k];
    if (k === NONE) {
      k = this.add(tok, c, this.depth[c] + 1);
      this.nextSibling[k] = this.firstChild[c];
      this.firstChild[c] = k;
    }
    return k;
  }

  private add(tok: number, parent: number, depth: number): number {
    const k = this.size++;
    this.token[k] = tok;
    this.parent[k] = parent;
    this.depth[k] = depth;
    this.firstChild[k] = NONE;
    this.nextSibling[k] = NONE;
    this.prob[k] = 0;
    this.cell[k] = 0;
    this.raw[k] = 0;
    this.confirmed[k] = 0;
    this.origin[k] = 0;
    this.copyLength[k] = 0;
    this.copyVotes[k] = 0;
    this.share[k] = 0;
    this.shareSlot[k] = 0;
    this.shareParent[k] = 0;
    this.copyAt.fill(NONE, k * MAX_COPIES, (k + 1) * MAX_COPIES);
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
    this.prob = float(this.prob);
    this.cell = int(this.cell);
    this.raw = float(this.raw);
    const bytes = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(cap);
      b.set(a);
      return b;
    };
    this.origin = bytes(this.origin);
    this.confirmed = bytes(this.confirmed);
    this.copyLength = int(this.copyLength);
    this.copyVotes = int(this.copyVotes);
    this.share = float(this.share);
    this.shareSlot = int(this.shareSlot);
    this.shareParent = int(this.shareParent);
    this.copyAt = int(this.copyAt, cap * MAX_COPIES);
    this.src = int(this.src, cap * this.slots);
    return true;
  }
}
