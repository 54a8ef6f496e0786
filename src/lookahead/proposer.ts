import { CandidateTree, type DraftSource } from './candidate-tree.js';
import { GOOD_MATCH, type CopyIndex } from './copy-index.js';
import { IndexHeap } from './index-heap.js';
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
}

const UNSEEN = 0;
const SELECTED = 1;

/**
 * Kinds of step for the adaptive budget (BudgetOptions.contexts): no copy match, a short one, a long one, and one
 * as long as the search goes (a replayed answer or a loop: nearly always right to the branch's end).
 */
export const DRAFT_CONTEXTS = 4;
/** A copy matched on this many context tokens is a repeated passage rather than a common phrase. */
const LONG_MATCH = 8;

/**
 * Builds one request's draft tree each step from its request, session and global tries (DESIGN.md §4).
 *
 * Selection follows PIA's intended mix rule: first a quota of max(decodingLength/2, 1) nodes by global
 * frequency, then the rest of the budget by mixed score (request/session counts first, global counts as a
 * tie-break), both best-first so the selection is a tree. Unlike PIA, the bigram and unigram matches are merged
 * rather than the shorter match overwriting the longer one.
 *
 * Before both, the continuation of the longest earlier match of the context's suffix in the copy sources (if any)
 * is taken as one chain, as deep as the budget allows: it names the single most likely path.
 *
 * The returned tree is `this.draft`: its buffers are reused and valid until the next `propose`.
 */
export class Proposer {
  readonly draft: DraftTree;
  private readonly cands: CandidateTree;
  private readonly heap = new IndexHeap();
  private state: Uint8Array = new Uint8Array(64);
  /** Candidates in draft pre-order (hier), and a DFS stack. */
  private order: Int32Array = new Int32Array(64);
  private orderSize = 0;
  private selected = 0;
  private stack: Int32Array = new Int32Array(64);
  private readonly capacity: number;
  private readonly copies: readonly CopyIndex[];
  /** Length of the context suffix the copied chain is matched on (0 = no copy). */
  copyMatched = 0;
  private copy: CopyIndex | null = null;
  private copyPos = -1;
  /** Context length `match` ran for; propose reuses that match once. */
  private matchedFor = -1;

  constructor(scopes: ProposerScopes, maxDecodingLength: number) {
    if (!Number.isInteger(maxDecodingLength) || maxDecodingLength < 1) {
      throw new RangeError(`maxDecodingLength must be a positive integer, got ${maxDecodingLength}`);
    }
    const sources: DraftSource[] = [{ trie: scopes.request, local: true }];
    if (scopes.session) sources.push({ trie: scopes.session, local: true });
    if (scopes.global) sources.push({ trie: scopes.global, local: false });
    this.cands = new CandidateTree(sources);
    this.copies = scopes.copies ?? [];
    this.capacity = maxDecodingLength;
    this.draft = {
      size: 0,
      tokens: new Int32Array(maxDecodingLength),
      parent: new Int32Array(maxDecodingLength),
      depth: new Int32Array(maxDecodingLength),
    };
  }

  /**
   * `context` ends with the root (last accepted token); the token before it, if any, refines the match.
   * `chainOnly` forces a single branch (models that cannot take a tree mask). `length` lets a caller pass a
   * preallocated context buffer whose filled prefix is shorter than the buffer.
   */
  propose(context: ArrayLike<number>, budget: DraftBudget, chainOnly = false, length = context.length): DraftTree {
    const n = length;
    if (n === 0) throw new RangeError('propose needs at least the root token');
    const draft = this.draft;
    draft.size = 1;
    draft.tokens[0] = context[n - 1];
    draft.parent[0] = -1;
    draft.depth[0] = 0;
    const nodes = Math.min(budget.decodingLength, this.capacity);
    const maxDepth = budget.branchLength;
    if (nodes <= 1 || maxDepth <= 0) return draft;
    if (this.matchedFor !== n) this.match(context, n);
    this.matchedFor = -1;
    this.cands.reset(context[n - 1], n >= 2 ? context[n - 2] : null, this.copy, this.copyPos);
    if (chainOnly || budget.layout === 'one') {
      this.chain(nodes, maxDepth);
    } else {
      this.select(nodes - 1, Math.max(nodes >> 1, 1), maxDepth);
      this.preorder();
      if (budget.layout === 'par') this.emitParallel(nodes);
      else this.emitHier();
    }
    return draft;
  }

  /**
   * Finds the longest earlier match of the context's suffix in the copy sources and returns the step's kind
   * (0 = none, 1 = short, 2 = long, 3 = full; see DRAFT_CONTEXTS). A `propose` on the same context right after
   * reuses it.
   */
  match(context: ArrayLike<number>, length = context.length): number {
    this.copy = null;
    this.copyPos = -1;
    this.copyMatched = 0;
    for (const index of this.copies) {
      const pos = index.find(context, length);
      if (pos >= 0 && index.matched > this.copyMatched) {
        this.copy = index;
        this.copyPos = pos;
        this.copyMatched = index.matched;
      }
    }
    this.matchedFor = length;
    if (this.copyMatched === 0) return 0;
    return this.copyMatched < LONG_MATCH ? 1 : this.copyMatched < GOOD_MATCH ? 2 : 3;
  }

  /** Greedy descent to the best-scoring child. */
  private chain(nodes: number, maxDepth: number): void {
    const c = this.cands;
    const draft = this.draft;
    let at = 0;
    while (draft.size < nodes && c.depth[at] < maxDepth) {
      c.expand(at, nodes - draft.size);
      let best = -1;
      for (let k = c.firstChild[at]; k !== -1; k = c.nextSibling[k]) {
        if (best === -1 || c.mix[k] > c.mix[best] || (c.mix[k] === c.mix[best] && k < best)) best = k;
      }
      if (best === -1) break;
      this.emit(best, draft.size - 1);
      at = best;
    }
  }

  /** Marks up to `budget` candidates SELECTED: `quota` best by global count first, then best by mixed score. */
  private select(budget: number, quota: number, maxDepth: number): void {
    const c = this.cands;
    c.expand(0, budget);
    this.selected = 0;
    this.ensureState(c.size);
    this.state.fill(UNSEEN);

    // The copied chain first; afterwards every unselected candidate is a child of the root or of a selected node.
    for (let k = c.copyChild(0); k !== -1 && this.selected < budget; k = c.copyChild(k)) {
      this.state[k] = SELECTED;
      this.selected++;
      if (c.depth[k] >= maxDepth) break;
      c.expand(k, budget - this.selected);
      this.ensureState(c.size);
    }

    this.heap.reset(c.global);
    for (let k = 1; k < c.size; k++) if (this.state[k] === UNSEEN && c.global[k] > 0) this.heap.push(k);
    while (this.selected < quota && this.heap.size > 0) this.take(this.heap.pop(), budget, maxDepth, true);

    // Every unselected candidate is a child of the root or of a selected node: the frontier.
    this.heap.reset(c.mix);
    for (let k = 1; k < c.size; k++) if (this.state[k] === UNSEEN) this.heap.push(k);
    while (this.selected < budget && this.heap.size > 0) this.take(this.heap.pop(), budget, maxDepth, false);
  }

  /** Selects `k` and offers its children to the heap (only those with global counts in the quota phase). */
  private take(k: number, budget: number, maxDepth: number, quotaPhase: boolean): void {
    const c = this.cands;
    this.state[k] = SELECTED;
    this.selected++;
    if (c.depth[k] >= maxDepth) return;
    if (c.expand(k, budget - this.selected)) this.heap.rekey(quotaPhase ? c.global : c.mix);
    this.ensureState(c.size);
    for (let ch = c.firstChild[k]; ch !== -1; ch = c.nextSibling[ch]) {
      if (!quotaPhase || c.global[ch] > 0) this.heap.push(ch);
    }
  }

  /** Orders the selected candidates depth-first, children by descending mixed score (the best path first). */
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
      for (let ch = c.firstChild[k]; ch !== -1; ch = c.nextSibling[ch]) {
        if (this.state[ch] !== SELECTED) continue;
        let i = top++;
        while (i > base && worse(c.mix, ch, this.stack[i - 1])) {
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
  }

  /** Scratch indexed by candidate id (reuses the DFS stack, idle once the order is built). */
  private slotOf(): Int32Array {
    if (this.stack.length < this.cands.size) this.stack = new Int32Array(this.cands.size * 2);
    return this.stack;
  }

  private ensureState(size: number): void {
    if (size <= this.state.length) return;
    const next = new Uint8Array(size * 2);
    next.set(this.state);
    this.state = next;
  }
}

/** True when `a` ranks below `b` (lower score, or equal score and created later). */
function worse(keys: Float64Array, a: number, b: number): boolean {
  return keys[a] < keys[b] || (keys[a] === keys[b] && a > b);
}
