import { AGREEMENT_CLASSES, MAX_CONFIRMATIONS } from './recycled.js';

/**
 * How likely a draft node is to be accepted once its parent is, learnt from what verification kept.
 *
 * Each candidate falls in a cell by the evidence behind it: whether the longest copy match runs through it (and how
 * long that match is) or runs elsewhere, whether its best trie support was seen after two context tokens or one, in
 * the request/session scopes or the global one, how often its parent was seen (or no trie supports it), its share
 * of the parent's count, and where the model itself ranked it after its parent's token (recycled.ts: among the top-k
 * the last time the model saw that token, or not, or the table knows nothing of the token).
 * Its raw estimate is that share (weighted down for a one-token key), or 1 on a copied continuation or a candidate
 * only the model's ranking proposes; the cell's
 * factor, accepted nodes per unit of raw estimate over the nodes the cell drafted, turns it into a probability. A
 * cell's factor starts from a prior and follows the model's outputs, so scores mean the same on any model or text:
 * a path's probability is the product down the tree, and the expected accepted tokens of a draft is their sum.
 *
 * Within a cell the estimate keeps the order of the raw shares, so with untrained factors a selection by probability
 * ranks trie continuations by count, as PIA does.
 */

/** Copy classes: no copy match reaches the parent; one reaches it but goes elsewhere; one runs through, by length. */
const COPY_NONE = 0;
const COPY_ELSEWHERE = 1;
/** Upper bounds (inclusive) of the copy-length classes 2, 3, ...: a match of 3 tokens, 4–5, 6–8, 9–15, 16–31, 32. */
const COPY_LENGTHS = [3, 5, 8, 15, 31];
const COPY_CLASSES = 2 + COPY_LENGTHS.length + 1;
/** Share of the parent's copy matches that continue through the candidate: all of them, most, or fewer. */
const VOTE_CLASSES = 3;
/** No trie support; parent counts 1, 2–3, 4+: a share of a single observation says little. */
const COUNT_CLASSES = 4;
const SHARE_CLASSES = 3;
/** Depth below the root 1, 2–3, 4+: deeper trie nodes were matched on a longer context. */
const DEPTH_CLASSES = 3;
const TRIE_CELLS = 2 * 2 * COUNT_CLASSES * SHARE_CLASSES * DEPTH_CLASSES;
/**
 * The model's rank of the candidate after its parent's token: the table knows nothing of that token; or it does and
 * the candidate is not among its top-k, or ranks 1, 2, 3–4, 5+ (1 = the model's first choice) — each by how well the
 * context that ranking was made in matches the candidate's (recycled.ts, AGREE_*).
 */
export const RANK_UNKNOWN = 0;
const RANKS = 5;
const RANK_CLASSES = 1 + RANKS * AGREEMENT_CLASSES;
export const ACCEPTANCE_CELLS = COPY_CLASSES * VOTE_CLASSES * TRIE_CELLS * RANK_CLASSES;
/** Prior multiplier of a candidate with trie or copy support, by rank (outside the top-k, 1, 2, 3–4, 5+). */
const RANK_PRIOR = [0.5, 1.25, 0.8, 0.6, 0.4];
/** Prior of a candidate only the model's ranking proposes, by rank, when the contexts agree best. */
const RECYCLED_PRIOR = [0, 0.8, 0.25, 0.12, 0.06];
/** What a worse agreement of contexts makes of those priors, by AGREE_* (measured on chat-llama-5m: 0.8 to 0.3). */
const AGREEMENT_PRIOR = [1, 0.7, 0.55, 0.4];

/** A one-token key's share counts for this much of a two-token key's. */
export const UNIGRAM_WEIGHT = 0.75;
/** Prior factors: trie-only candidates, candidates off the copied path, and copied ones by match length class. */
const PRIOR_TRIE = 0.7;
const PRIOR_ELSEWHERE = 0.35;
const PRIOR_COPY = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/**
 * The prior counts as this much raw estimate: a cell's own factor moves only on evidence of its own, the shared
 * corrections adapt to the text sooner (chat-llama-5m: 2 → 8 moves tokens/step at 8–16 nodes little, at 32–64 +1–2 %).
 */
const PRIOR_WEIGHT = 8;
/** Past this much raw estimate a cell halves its history, so it follows a change of text or model. */
const HISTORY = 400;
/** No node is ever certain. */
const MAX_PROBABILITY = 0.98;

/**
 * The cell of a candidate. `copyLength` is the longest copy match through it (0 = none), `copyVotes` the share of
 * the parent's copy matches that run through it, `copyAtParent` whether a copy match reaches its parent;
 * `bigram`/`local` describe the trie slot of its best share, `parentCount` that slot's parent count (0 when no trie
 * supports it); `depth` is its depth below the root.
 */
export function acceptanceCell(
  copyLength: number,
  copyVotes: number,
  copyAtParent: boolean,
  bigram: boolean,
  local: boolean,
  parentCount: number,
  share: number,
  depth = 1,
  rank = RANK_UNKNOWN,
): number {
  let copy = copyLength > 0 ? COPY_CLASSES - 1 : copyAtParent ? COPY_ELSEWHERE : COPY_NONE;
  if (copyLength > 0) {
    for (let i = 0; i < COPY_LENGTHS.length; i++) {
      if (copyLength <= COPY_LENGTHS[i]) {
        copy = 2 + i;
        break;
      }
    }
  }
  const count = parentCount === 0 ? 0 : parentCount <= 1 ? 1 : parentCount <= 3 ? 2 : 3;
  const part = share < 0.3 ? 0 : share < 0.7 ? 1 : 2;
  const votes = copyLength === 0 || copyVotes >= 1 ? 0 : copyVotes >= 0.5 ? 1 : 2;
  const deep = depth <= 1 ? 0 : depth <= 3 ? 1 : 2;
  const trie = ((((bigram ? 1 : 0) * 2 + (local ? 1 : 0)) * COUNT_CLASSES + count) * SHARE_CLASSES + part) * DEPTH_CLASSES + deep;
  return ((copy * VOTE_CLASSES + votes) * TRIE_CELLS + trie) * RANK_CLASSES + rank;
}

/**
 * The rank class of a candidate the model ranked `rank`-th (0 = first; -1 = outside the top-k) in a ranking whose
 * context agreed as `agreement` (AGREE_*); RANK_UNKNOWN when the table knows nothing of its parent's token.
 */
export function rankClass(rank: number, known: boolean, agreement = 0): number {
  if (!known) return RANK_UNKNOWN;
  const r = rank < 0 ? 0 : rank === 0 ? 1 : rank === 1 ? 2 : rank <= 3 ? 3 : 4;
  return 1 + r * AGREEMENT_CLASSES + agreement;
}

/** Whether the cell is on a copied continuation (its raw estimate is 1, not a share). */
export function isCopyCell(cell: number): boolean {
  return Math.floor(cell / (VOTE_CLASSES * TRIE_CELLS * RANK_CLASSES)) >= 2;
}

/**
 * Residual corrections, one weight per class of each kind of evidence (copy class, copy votes, trie slot kind, parent
 * count, share, exact depth, model rank), added to the logit of the cell's estimate. A cell sees few nodes (there
 * are tens of thousands), so its own factor stays near its prior for long; a correction is shared by every cell of
 * its class and learns within a few steps what the text at hand makes of that kind of evidence, so differently
 * supported candidates compare fairly in one ranking. Trained online by logistic regression on the same outcomes.
 */
const MAX_DEPTH_CLASS = 12;
const GROUP_OFFSETS = (() => {
  const sizes = [COPY_CLASSES, VOTE_CLASSES, 4, COUNT_CLASSES, SHARE_CLASSES, MAX_DEPTH_CLASS + 1, RANK_CLASSES, MAX_CONFIRMATIONS + 2];
  const offsets = new Int32Array(sizes.length + 1);
  for (let i = 0; i < sizes.length; i++) offsets[i + 1] = offsets[i] + sizes[i];
  return offsets;
})();
const CORRECTION_GROUPS = GROUP_OFFSETS.length - 1;
/** Step size of the corrections' online logistic regression. */
const LEARNING_RATE = 0.03;
const MIN_PROBABILITY = 1e-6;

/** Per-cell factors learnt from verification, with shared per-class corrections; one per model, shared by its requests. */
export class AcceptanceModel {
  private readonly accepted = new Float64Array(ACCEPTANCE_CELLS);
  private readonly raw = new Float64Array(ACCEPTANCE_CELLS);
  private readonly prior = new Float64Array(ACCEPTANCE_CELLS);
  private readonly correction = new Float64Array(GROUP_OFFSETS[CORRECTION_GROUPS]);
  private readonly active = new Int32Array(CORRECTION_GROUPS);

  constructor() {
    const perCopy = VOTE_CLASSES * TRIE_CELLS * RANK_CLASSES;
    const perCount = SHARE_CLASSES * DEPTH_CLASSES * RANK_CLASSES;
    for (let cell = 0; cell < ACCEPTANCE_CELLS; cell++) {
      const copy = Math.floor(cell / perCopy);
      const rank = cell % RANK_CLASSES;
      const supported = Math.floor(cell / perCount) % COUNT_CLASSES !== 0;
      const base = copy === COPY_NONE ? PRIOR_TRIE : copy === COPY_ELSEWHERE ? PRIOR_ELSEWHERE : PRIOR_COPY[copy - 2];
      if (rank === RANK_UNKNOWN) {
        this.prior[cell] = supported || copy >= 2 ? base : 0;
        continue;
      }
      const r = Math.floor((rank - 1) / AGREEMENT_CLASSES);
      const agreement = AGREEMENT_PRIOR[(rank - 1) % AGREEMENT_CLASSES];
      this.prior[cell] = copy < 2 && !supported ? RECYCLED_PRIOR[r] * agreement : base * RANK_PRIOR[r];
    }
  }

  /**
   * Probability that a candidate of `cell` with raw estimate `raw`, at `depth`, is accepted, given its parent is;
   * `confirmed` is 0, or 1 + RecycledTable.confirmations when it is the model's first choice after its parent.
   */
  probability(cell: number, raw: number, depth = 1, confirmed = 0): number {
    const base = this.cellEstimate(cell, raw);
    if (base <= 0) return 0;
    this.classes(cell, depth, confirmed);
    let logit = Math.log(base / (1 - base));
    for (let g = 0; g < CORRECTION_GROUPS; g++) logit += this.correction[this.active[g]];
    return Math.min(MAX_PROBABILITY, Math.max(MIN_PROBABILITY, 1 / (1 + Math.exp(-logit))));
  }

  /** A node of `cell`, raw estimate `raw` and `depth` whose parent was accepted was itself accepted or not. */
  record(cell: number, raw: number, accepted: boolean, depth = 1, confirmed = 0): void {
    const p = this.probability(cell, raw, depth, confirmed);
    if (p > 0) {
      const step = LEARNING_RATE * ((accepted ? 1 : 0) - p);
      for (let g = 0; g < CORRECTION_GROUPS; g++) this.correction[this.active[g]] += step;
    }
    this.raw[cell] += raw;
    if (accepted) this.accepted[cell] += 1;
    if (this.raw[cell] > HISTORY) {
      this.raw[cell] *= 0.5;
      this.accepted[cell] *= 0.5;
    }
  }

  private cellEstimate(cell: number, raw: number): number {
    const factor = (this.accepted[cell] + PRIOR_WEIGHT * this.prior[cell]) / (this.raw[cell] + PRIOR_WEIGHT);
    return Math.min(MAX_PROBABILITY, factor * raw);
  }

  /** Fills `active` with the correction of each group that `cell` at `depth` falls in (acceptanceCell's layout). */
  private classes(cell: number, depth: number, confirmed: number): void {
    const rank = cell % RANK_CLASSES;
    let rest = Math.floor(cell / RANK_CLASSES);
    const trie = rest % TRIE_CELLS;
    rest = Math.floor(rest / TRIE_CELLS);
    const a = this.active;
    a[0] = GROUP_OFFSETS[0] + Math.floor(rest / VOTE_CLASSES);
    a[1] = GROUP_OFFSETS[1] + (rest % VOTE_CLASSES);
    const perSlot = COUNT_CLASSES * SHARE_CLASSES * DEPTH_CLASSES;
    a[2] = GROUP_OFFSETS[2] + Math.floor(trie / perSlot);
    a[3] = GROUP_OFFSETS[3] + (Math.floor(trie / (SHARE_CLASSES * DEPTH_CLASSES)) % COUNT_CLASSES);
    a[4] = GROUP_OFFSETS[4] + (Math.floor(trie / DEPTH_CLASSES) % SHARE_CLASSES);
    a[5] = GROUP_OFFSETS[5] + Math.min(depth, MAX_DEPTH_CLASS);
    a[6] = GROUP_OFFSETS[6] + rank;
    a[7] = GROUP_OFFSETS[7] + confirmed;
  }
}
