import { AcceptanceModel } from './acceptance.js';
import { CandidateTree, MAX_COPIES, ORIGIN_GLOBAL, ORIGIN_REQUEST, ORIGIN_SESSION, type DraftSource } from './candidate-tree.js';
import type { CopyIndex } from './copy-index.js';
import { IndexHeap } from './index-heap.js';
import type { RecycledTable } from './recycled.js';
import type { TokenTrie } from './trie.js';
import type { DraftBudget, DraftTree } from './types.js';

/** The tries one request drafts from. */
export interface ProposerScopes {
  request: TokenTrie;
  session?: TokenTrie | null;
  global?: TokenTrie | null;
  /**
   * Stored sequences to copy from (copy-index.ts), in order of preference on equally long matches: the request's
   * own prompt and output first, then the tenant's earlier answers.
   */
  copies?: readonly CopyIndex[];
  /** Which of `copies` holds the client's predicted output: the drafts copied from it are counted apart. */
  prediction?: CopyIndex | null;
  /** The model's top-k successors per token, fed from verification (recycled.ts). */
  recycled?: RecycledTable | null;
  /** The tag this request records its rows under in `recycled`. */
  tag?: number;
}

const UNSEEN = 0;
const SELECTED = 1;
const NONE = -1;

/**
 * Builds one request's draft tree each step from its request, session and global tries and its copy sources
 * (DESIGN.md §4).
 *
 * Candidates are the continuations of the root in every trie (after the last two tokens and after the last one,
 * merged) and the continuations of the longest earlier matches of the context's suffix in the copy sources (up to
 * MAX_COPIES of them: what followed this passage each time it occurred). Each gets the probability that
 * verification accepts it (candidate-tree.ts, acceptance.ts), and the draft is the most probable ones, best first:
 * an ancestor-closed selection that maximises the expected accepted tokens for its size. Unlike PIA's mix rule
 * (request matches first, a quota of global ones), how much each kind of evidence is worth is learnt from what was
 * accepted (`accepted`), so the same scores serve a RAG prompt, a replayed answer and text with nothing to copy.
 *
 * `prepare` selects once for the largest draft and fills `gains` (expected accepted tokens per draft size), which is
 * what the budget sizes the step by; `propose` then emits the best `size` of that selection.
 *
 * The returned tree is `this.draft`: its buffers are reused and valid until the next `propose`.
 */
export class Proposer {
  readonly draft: DraftTree;
  /**
   * After `prepare`: gains[k] = expected accepted draft tokens of a draft of k nodes, root included (gains[1] = 0),
   * for k up to `available + 1`.
   */
  readonly gains: Float64Array;
  /** Accepted draft tokens by the ORIGIN_* bits of the sources that proposed them (candidate-tree.ts), since creation. */
  readonly acceptedByOrigin = new Float64Array(16);
  /** Candidates selected by the last `prepare` (root excluded). */
  available = 0;
  readonly acceptance: AcceptanceModel;
  private readonly cands: CandidateTree;
  private readonly heap = new IndexHeap();
  private state: Uint8Array = new Uint8Array(64);
  /** Candidates in selection order (most probable first), in draft pre-order (hier), and a DFS stack. */
  private picked: Int32Array;
  private order: Int32Array = new Int32Array(64);
  private orderSize = 0;
  private stack: Int32Array = new Int32Array(64);
  /** Candidate behind each draft node, for learning from the verification. */
  private readonly nodeCand: Int32Array;
  /**
   * Draft tokens copied from the client's prediction that went into forwards, and those of them verification kept:
   * what OpenAI's accepted/rejected prediction tokens mean.
   */
  readonly predictionTokens = { drafted: 0, accepted: 0 };
  private readonly prediction: CopyIndex | null;
  /** The draft was emitted and its outcome not yet learnt. */
  private pending = false;
  private readonly capacity: number;
  private readonly copies: readonly CopyIndex[];
  /** This step's copy matches, longest first: source, stored position, match length. */
  private readonly matchSource: CopyIndex[] = [];
  private readonly matchOrigin = new Uint8Array(MAX_COPIES);
  private readonly matchPos = new Int32Array(MAX_COPIES);
  private readonly matchLen = new Int32Array(MAX_COPIES);
  private matchCount = 0;
  private readonly scratchPos = new Int32Array(MAX_COPIES);
  private readonly scratchLen = new Int32Array(MAX_COPIES);
  /** What the last `prepare` ran for: context length, depth limit, chain mode (-1 = nothing prepared). */
  private preparedLength = -1;
  private preparedDepth = 0;
  private preparedChain = false;

  /** `acceptance` is shared by the requests of a model, so each starts from what earlier ones learnt. */
  constructor(scopes: ProposerScopes, maxDecodingLength: number, acceptance = new AcceptanceModel()) {
    if (!Number.isInteger(maxDecodingLength) || maxDecodingLength < 1) {
      throw new RangeError(`maxDecodingLength must be a positive integer, got ${maxDecodingLength}`);
    }
    const sources: DraftSource[] = [{ trie: scopes.request, local: true, origin: ORIGIN_REQUEST }];
    if (scopes.session) sources.push({ trie: scopes.session, local: true, origin: ORIGIN_SESSION });
    if (scopes.global) sources.push({ trie: scopes.global, local: false, origin: ORIGIN_GLOBAL });
    this.acceptance = acceptance;
    this.cands = new CandidateTree(sources, acceptance, scopes.recycled ?? null, scopes.tag ?? 0);
    this.copies = scopes.copies ?? [];
    this.prediction = scopes.prediction ?? null;
    this.capacity = maxDecodingLength;
    this.gains = new Float64Array(maxDecodingLength + 1);
    this.picked = new Int32Array(maxDecodingLength);
    this.nodeCand = new Int32Array(maxDecodingLength);
    this.draft = {
      size: 0,
      tokens: new Int32Array(maxDecodingLength),
      parent: new Int32Array(maxDecodingLength),
      depth: new Int32Array(maxDecodingLength),
    };
  }

  /**
   * Selects the most probable candidates after `context[0..length)` for a draft of up to `maxNodes` nodes and depth
   * `maxDepth` (one chain when `chain`), and fills `gains`. A `propose` on the same context right after reuses it.
   * Returns `available`.
   */
  prepare(context: ArrayLike<number>, length: number, maxNodes: number, maxDepth: number, chain = false): number {
    if (length === 0) throw new RangeError('prepare needs at least the root token');
    this.preparedLength = length;
    this.preparedDepth = maxDepth;
    this.preparedChain = chain;
    this.available = 0;
    this.gains[1] = 0;
    const budget = Math.min(maxNodes, this.capacity) - 1;
    if (budget <= 0 || maxDepth <= 0) return 0;
    this.match(context, length);
    this.cands.reset(context[length - 1], length >= 2 ? context[length - 2] : null, this.matchSource, this.matchPos, this.matchLen, this.matchCount, this.matchOrigin, length >= 3 ? context[length - 3] : null);
    if (chain) this.selectChain(budget, maxDepth);
    else this.select(budget, maxDepth);
    const c = this.cands;
    for (let i = 0; i < this.available; i++) this.gains[i + 2] = this.gains[i + 1] + c.prob[this.picked[i]];
    return this.available;
  }

  /** Forgets the last `prepare` (a step that will not draft): nothing available. */
  unprepare(): void {
    this.available = 0;
    this.preparedLength = -1;
  }

  /**
   * `context` ends with the root (last accepted token); the token before it, if any, refines the match.
   * `chainOnly` forces a single branch (models that cannot take a tree mask). `length` lets a caller pass a
   * preallocated context buffer whose filled prefix is shorter than the buffer.
   */
  propose(context: ArrayLike<number>, budget: DraftBudget, chainOnly = false, length = context.length): DraftTree {
    if (length === 0) throw new RangeError('propose needs at least the root token');
    const draft = this.draft;
    draft.size = 1;
    draft.tokens[0] = context[length - 1];
    draft.parent[0] = -1;
    draft.depth[0] = 0;
    this.nodeCand[0] = 0;
    const nodes = Math.min(budget.decodingLength, this.capacity);
    if (nodes <= 1 || budget.branchLength <= 0) return draft;
    const chain = chainOnly || budget.layout === 'one';
    if (this.preparedLength !== length || this.preparedDepth !== budget.branchLength || this.preparedChain !== chain) {
      this.prepare(context, length, nodes, budget.branchLength, chain);
    }
    this.preparedLength = -1;
    const take = Math.min(nodes - 1, this.available);
    if (chain) {
      for (let i = 0; i < take; i++) this.emit(this.picked[i], i);
    } else {
      this.mark(take);
      this.preorder();
      if (budget.layout === 'par') this.emitParallel(nodes);
      else this.emitHier();
    }
    this.pending = draft.size > 1;
    return draft;
  }

  /**
   * The tokens committed after the last proposed draft (accepted path, then the bonus token): each node whose
   * parent was accepted teaches the acceptance model whether it was accepted too.
   */
  accepted(tokens: ArrayLike<number>): void {
    if (!this.pending) return;
    this.pending = false;
    const draft = this.draft;
    const c = this.cands;
    let node = 0;
    for (let d = 0; d < tokens.length; d++) {
      let next = NONE;
      for (let j = node + 1; j < draft.size; j++) {
        if (draft.parent[j] !== node) continue;
        const hit = next === NONE && draft.tokens[j] === tokens[d];
        const k = this.nodeCand[j];
        if (hit) {
          next = j;
          if (this.prediction && c.copiesFrom(k, this.prediction)) this.predictionTokens.accepted++;
        }
        this.acceptance.record(c.cell[k], c.raw[k], hit, c.depth[k], c.confirmed[k]);
      }
      if (next === NONE) return;
      this.acceptedByOrigin[c.origin[this.nodeCand[next]]]++;
      node = next;
    }
  }

  /** Finds up to MAX_COPIES earlier matches of the context's suffix over all copy sources, longest first. */
  private match(context: ArrayLike<number>, length: number): void {
    this.matchCount = 0;
    for (let i = 0; i < this.copies.length; i++) {
      const index = this.copies[i];
      const found = index.matches(context, length, this.scratchPos, this.scratchLen);
      for (let j = 0; j < found; j++) this.keepMatch(index, i === 0 ? ORIGIN_REQUEST : ORIGIN_GLOBAL, this.scratchPos[j], this.scratchLen[j]);
    }
  }

  /** Adds a copy match to the step's list, longest first (earlier sources first on equal length), at most MAX_COPIES. */
  private keepMatch(index: CopyIndex, origin: number, pos: number, len: number): void {
    let i = this.matchCount;
    if (i === MAX_COPIES) {
      if (this.matchLen[i - 1] >= len) return;
      i--;
    } else {
      this.matchCount++;
    }
    while (i > 0 && this.matchLen[i - 1] < len) {
      this.matchSource[i] = this.matchSource[i - 1];
      this.matchOrigin[i] = this.matchOrigin[i - 1];
      this.matchPos[i] = this.matchPos[i - 1];
      this.matchLen[i] = this.matchLen[i - 1];
      i--;
    }
    this.matchSource[i] = index;
    this.matchOrigin[i] = origin;
    this.matchPos[i] = pos;
    this.matchLen[i] = len;
  }

  /** Greedy descent to the most probable child. */
  private selectChain(budget: number, maxDepth: number): void {
    const c = this.cands;
    let at = 0;
    while (this.available < budget && c.depth[at] < maxDepth) {
      c.expand(at, budget - this.available);
      let best = NONE;
      for (let k = c.firstChild[at]; k !== NONE; k = c.nextSibling[k]) if (best === NONE || before(c.prob, k, best)) best = k;
      if (best === NONE || c.prob[best] <= 0) break;
      this.pick(best);
      at = best;
    }
  }

  /** Best-first by probability from the root: each pick offers its children, so the selection is ancestor-closed. */
  private select(budget: number, maxDepth: number): void {
    const c = this.cands;
    c.expand(0, budget);
    this.heap.reset(c.prob);
    for (let k = c.firstChild[0]; k !== NONE; k = c.nextSibling[k]) if (c.prob[k] > 0) this.heap.push(k);
    while (this.available < budget && this.heap.size > 0) {
      const k = this.heap.pop();
      this.pick(k);
      if (c.depth[k] >= maxDepth) continue;
      if (c.expand(k, budget - this.available)) this.heap.rekey(c.prob);
      for (let ch = c.firstChild[k]; ch !== NONE; ch = c.nextSibling[ch]) if (c.prob[ch] > 0) this.heap.push(ch);
    }
  }

  private pick(k: number): void {
    if (this.available === this.picked.length) {
      const next = new Int32Array(this.picked.length * 2);
      next.set(this.picked);
      this.picked = next;
    }
    this.picked[this.available++] = k;
  }

  /** Marks the first `take` picks SELECTED, the rest not. */
  private mark(take: number): void {
    const size = this.cands.size;
    if (this.state.length < size) this.state = new Uint8Array(size * 2);
    this.state.fill(UNSEEN, 0, size);
    for (let i = 0; i < take; i++) this.state[this.picked[i]] = SELECTED;
  }

  /** Orders the selected candidates depth-first, children by descending probability (the best path first). */
  private preorder(): void {
    const c = this.cands;
    if (this.order.length < c.size) {
      this.order = new Int32Array(c.size * 2);
      this.stack = new Int32Array(c.size * 2);
    }
    let top = 0;
    let count = 0;
    this.stack[top++] = 0;
    while (top > 0) {
      const k = this.stack[--top];
      this.order[count++] = k;
      // Push selected children so that the best pops first: insertion-sort them ascending onto the stack.
      const base = top;
      for (let ch = c.firstChild[k]; ch !== NONE; ch = c.nextSibling[ch]) {
        if (this.state[ch] !== SELECTED) continue;
        let i = top++;
        while (i > base && before(c.prob, this.stack[i - 1], ch)) {
          this.stack[i] = this.stack[i - 1];
          i--;
        }
        this.stack[i] = ch;
      }
    }
    this.orderSize = count;
  }

  private emitHier(): void {
    // order[0] is the root, already in the draft; map candidate → draft index through `stack` (free now).
    const c = this.cands;
    const slot = this.slotOf();
    slot[0] = 0;
    for (let i = 1; i < this.orderSize; i++) {
      const k = this.order[i];
      slot[k] = this.draft.size;
      this.emit(k, slot[c.parent[k]]);
    }
  }

  /** Each root-to-leaf path of the selection as its own branch (prefixes duplicated), best first, until full. */
  private emitParallel(nodes: number): void {
    const c = this.cands;
    const draft = this.draft;
    const path = this.slotOf();
    for (let i = 1; i < this.orderSize && draft.size < nodes; i++) {
      const leaf = this.order[i];
      if (i + 1 < this.orderSize && c.parent[this.order[i + 1]] === leaf) continue;
      let len = 0;
      for (let k = leaf; k !== 0; k = c.parent[k]) path[len++] = k;
      let parent = 0;
      for (let j = len - 1; j >= 0 && draft.size < nodes; j--) {
        const at = draft.size;
        this.emit(path[j], parent);
        parent = at;
      }
    }
  }

  private emit(k: number, parent: number): void {
    const draft = this.draft;
    const at = draft.size++;
    draft.tokens[at] = this.cands.token[k];
    draft.parent[at] = parent;
    draft.depth[at] = draft.depth[parent] + 1;
    this.nodeCand[at] = k;
    if (this.prediction && this.cands.copiesFrom(k, this.prediction)) this.predictionTokens.drafted++;
  }

  /** Scratch indexed by candidate id (reuses the DFS stack, idle once the order is built). */
  private slotOf(): Int32Array {
    if (this.stack.length < this.cands.size) this.stack = new Int32Array(this.cands.size * 2);
    return this.stack;
  }
}

/** True when `a` ranks above `b` (more probable, or equally and created earlier). */
function before(keys: Float64Array, a: number, b: number): boolean {
  return keys[a] > keys[b] || (keys[a] === keys[b] && a < b);
}
