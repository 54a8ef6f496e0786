/**
 * Token Recycling (arXiv 2408.08696): a table token → the model's top-k next tokens, overwritten from every row a
 * verification forward computed. The forward already ranks the whole vocabulary at every draft node, so what the
 * model said after a token, in the latest context it saw that token in, costs nothing to keep; it drafts where
 * retrieval finds nothing and extends branches past where retrieval stops, and ranks retrieved candidates.
 *
 * A row's ranking depends on the context it was computed in, so the table keeps each row three times: under its
 * token, under its token and the one before it (a bigram slot), and under its token and the two before it (a trigram
 * slot). A lookup prefers the longest: its first choice is right more often (chat-llama-5m, held-out rag-eval: 70 %
 * for the trigram slot, 65 % for the bigram one, 59 % for the token's; llma rag 69, 66, 58 %). Each slot also keeps the two tokens before its
 * token and which request recorded it: a ranking made after the same two tokens in the same request is right far
 * more often (~80 % against ~30 % for one from an earlier request after other tokens), and `agreement` lets the
 * drafts weigh it so.
 *
 * Bounded: a fixed number of slots. A token's slot is its low bits (a vocabulary up to the unigram slot count never
 * collides; beyond it a newer token takes the slot), a bigram's or trigram's a hash; a newer row takes a slot. Memory is allocated
 * on the first row recorded, so a tenant that never drafts costs nothing.
 */
export const RECYCLED_K = 8;
/**
 * The prompt's last rows the table learns from where the LM head is dear (RECYCLED_PROMPT_ALL_BELOW). Each row's top
 * ids cost that row's LM head, a quarter of a prompt chunk's work on a 150k vocabulary, while the tail holds nearly
 * all of what they are worth: draft-replay on rag-eval (chat-llama-5m, 16 nodes) gave 3.84 tokens/step learning from
 * every prompt row, 3.81 from the last 256, 3.71 from 128, 3.43 from the last alone (adaptive sizing: 2.74, 2.66).
 */
const RECYCLED_PROMPT_ROWS = 256;
/** A head under this share of a token's work (ModelInfo.headShare) is cheap enough to learn from every prompt row. */
const RECYCLED_PROMPT_ALL_BELOW = 0.1;

/** The first prompt row whose top ids the table learns from, for a model whose LM head takes `headShare` of a token's work. */
export function firstPromptRowRecycled(promptLength: number, headShare = 1): number {
  return headShare < RECYCLED_PROMPT_ALL_BELOW ? 0 : Math.max(0, promptLength - RECYCLED_PROMPT_ROWS);
}
const MAX_TOKEN_SLOTS = 1 << 14;
const MAX_BIGRAM_SLOTS = 1 << 15;
const NONE = -1;
export const MAX_CONFIRMATIONS = 2;

/** How well a slot's context matches a query's (see agreement), best first. */
export const AGREE_BOTH_SAME_REQUEST = 0;
export const AGREE_PREVIOUS = 1;
export const AGREE_NONE_SAME_REQUEST = 2;
export const AGREE_NONE = 3;
export const AGREEMENT_CLASSES = 4;

export class RecycledTable {
  readonly k: number;
  /**
   * Slots [0, tokenSlots) are keyed by a token, the next bigramSlots by a token and the one before, the next
   * bigramSlots by a token and the two before.
   */
  private readonly tokenSlots: number;
  private readonly bigramSlots: number;
  /** Token held by each slot (-1 = empty), and its successors, k per slot, best first (-1 padded). */
  private keys: Int32Array | null = null;
  private next: Int32Array | null = null;
  /** Per slot: the two tokens before its token when recorded (nearest first), and the recording request's tag. */
  private before: Int32Array | null = null;
  private tags: Int32Array | null = null;
  /** Per slot: how many rows in a row the slot took with the same first choice (capped at MAX_CONFIRMATIONS). */
  private confirmed: Uint8Array | null = null;

  /** `vocabSize` sizes the table: one slot per token up to MAX_TOKEN_SLOTS, twice as many bigram slots. */
  constructor(vocabSize: number, k = RECYCLED_K) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
    this.k = k;
    let slots = 16;
    while (slots < vocabSize && slots < MAX_TOKEN_SLOTS) slots *= 2;
    this.tokenSlots = slots;
    this.bigramSlots = Math.min(2 * slots, MAX_BIGRAM_SLOTS);
  }

  /** Bytes the table holds (0 until the first row). */
  get bytes(): number {
    return this.keys ? this.keys.byteLength + this.next!.byteLength + this.before!.byteLength + this.tags!.byteLength + this.confirmed!.byteLength : 0;
  }

  /**
   * The model's successors of `token`, best first: ids[from .. from + count) (count ≤ k; fewer leaves the rest
   * empty), computed after `prev1` and `prev2` (the tokens before it, nearest first; -1 = none) by request `tag`.
   * Replaces what the table held for the token, for the token after `prev1`, and after `prev2`, `prev1`.
   */
  record(token: number, ids: ArrayLike<number>, from = 0, count = this.k, prev1 = NONE, prev2 = NONE, tag = 0): void {
    if (!this.keys) {
      const slots = this.tokenSlots + 2 * this.bigramSlots;
      this.keys = new Int32Array(slots).fill(NONE);
      this.next = new Int32Array(slots * this.k).fill(NONE);
      this.before = new Int32Array(slots * 2);
      this.tags = new Int32Array(slots);
      this.confirmed = new Uint8Array(slots);
    }
    this.write(this.tokenSlot(token), token, ids, from, count, prev1, prev2, tag);
    if (prev1 === NONE) return;
    this.write(this.bigramSlot(token, prev1), token, ids, from, count, prev1, prev2, tag);
    if (prev2 !== NONE) this.write(this.trigramSlot(token, prev1, prev2), token, ids, from, count, prev1, prev2, tag);
  }

  /**
   * The slot holding what the model ranked after `token` following `prev2`, `prev1` (nearest last; its trigram slot
   * first, then its bigram slot), or -1.
   */
  find(token: number, prev1: number, prev2 = NONE): number {
    if (!this.keys) return NONE;
    if (prev1 !== NONE && prev2 !== NONE) {
      const c = this.trigramSlot(token, prev1, prev2);
      if (this.keys[c] === token && this.before![2 * c] === prev1 && this.before![2 * c + 1] === prev2) return c;
    }
    if (prev1 !== NONE) {
      const b = this.bigramSlot(token, prev1);
      if (this.keys[b] === token && this.before![2 * b] === prev1) return b;
    }
    const t = this.tokenSlot(token);
    return this.keys[t] === token ? t : NONE;
  }

  /** The successor at `rank` (0 = the model's first choice) in `slot` (from find), or -1. */
  successor(slot: number, rank: number): number {
    return rank < this.k ? this.next![slot * this.k + rank] : NONE;
  }

  /** Rank of `next` among the successors in `slot` (from find), or -1. */
  rankOf(slot: number, next: number): number {
    const at = slot * this.k;
    for (let i = 0; i < this.k; i++) if (this.next![at + i] === next) return i;
    return NONE;
  }

  /**
   * How many rows before the latest one in `slot` (from find) had the same first choice, up to MAX_CONFIRMATIONS: a
   * first choice the model kept making after this token, in other contexts too, depends less on the context.
   */
  confirmations(slot: number): number {
    return this.confirmed![slot];
  }

  /**
   * How the context the ranking in `slot` (from find) was made in matches `prev1`, `prev2` (the tokens before its
   * token now, nearest first) and request `tag`: AGREE_*.
   */
  agreement(slot: number, prev1: number, prev2: number, tag: number): number {
    const same = this.tags![slot] === tag;
    if (this.before![2 * slot] !== prev1 || prev1 === NONE) return same ? AGREE_NONE_SAME_REQUEST : AGREE_NONE;
    return same && this.before![2 * slot + 1] === prev2 ? AGREE_BOTH_SAME_REQUEST : AGREE_PREVIOUS;
  }

  clear(): void {
    this.keys?.fill(NONE);
  }

  private tokenSlot(token: number): number {
    return token & (this.tokenSlots - 1);
  }

  private bigramSlot(token: number, prev1: number): number {
    return this.tokenSlots + (mix(Math.imul(prev1, 0x9e3779b1) ^ token) & (this.bigramSlots - 1));
  }

  private trigramSlot(token: number, prev1: number, prev2: number): number {
    const h = mix(Math.imul(mix(Math.imul(prev2, 0x9e3779b1) ^ prev1), 0x9e3779b1) ^ token);
    return this.tokenSlots + this.bigramSlots + (h & (this.bigramSlots - 1));
  }

  private write(slot: number, token: number, ids: ArrayLike<number>, from: number, count: number, prev1: number, prev2: number, tag: number): void {
    const at = slot * this.k;
    const same = this.keys![slot] === token && count > 0 && this.next![at] === ids[from];
    this.confirmed![slot] = same ? Math.min(MAX_CONFIRMATIONS, this.confirmed![slot] + 1) : 0;
    this.keys![slot] = token;
    this.before![2 * slot] = prev1;
    this.before![2 * slot + 1] = prev2;
    this.tags![slot] = tag;
    const n = Math.min(count, this.k);
    for (let i = 0; i < n; i++) this.next![at + i] = ids[from + i];
    this.next!.fill(NONE, at + n, at + this.k);
  }
}

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return h ^ (h >>> 13);
}

/**
 * The `k` highest entries of a logits row, best first (the lower id first on ties, as ArgMax and TopK pick), as ids
 * written to out[at .. at + k); the row is row[from .. from + length), so a forward's logits need no view per row.
 * One pass with an insertion-sorted window: k is small, and most entries fall below the
 * window's last at a single comparison.
 */
export function topIds(row: Float32Array, out: Int32Array | number[], at: number, k: number, from = 0, length = row.length - from): void {
  const n = Math.min(k, length);
  let filled = 0;
  for (let i = 0; i < length; i++) {
    const v = row[from + i];
    if (filled === n && !(v > row[from + out[at + n - 1]])) continue;
    let j = filled < n ? filled++ : n - 1;
    while (j > 0 && v > row[from + out[at + j - 1]]) {
      out[at + j] = out[at + j - 1];
      j--;
    }
    out[at + j] = i;
  }
  for (let j = n; j < k; j++) out[at + j] = NONE;
}
