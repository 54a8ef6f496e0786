/**
 * A draft tree laid out for one forward pass. Node 0 is the root: the last accepted token, not yet in the KV
 * cache. Nodes are in pre-order, so a node's parent always has a smaller index.
 */
export interface DraftTree {
  /** Nodes including the root. */
  size: number;
  tokens: Int32Array;
  /** parent[0] = -1. */
  parent: Int32Array;
  /** depth[0] = 0. */
  depth: Int32Array;
}

/** How draft nodes are laid out: shared prefixes, duplicated branches (each sees root + itself), or one chain. */
export type DraftLayout = 'hier' | 'par' | 'one';

/** Limits of one step's draft. */
export interface DraftBudget {
  /** Max nodes fed to the forward, root included. */
  decodingLength: number;
  /** Max depth below the root. */
  branchLength: number;
  layout: DraftLayout;
}

/**
 * A constraint on which token may come next (structured outputs), owned by the caller: verification masks every row
 * it reads and advances the constraint past every token it commits, so a draft token the constraint forbids can never
 * equal the target and is rejected like any wrong guess.
 */
export interface TokenFilter {
  /** Sets the logits of the tokens not allowed after those accepted so far to -Infinity. */
  mask(row: Float32Array): void;
  /**
   * `token` was picked and is committed: the next mask is the one after it. False when the constraint is complete
   * (it accepted an end token): nothing may follow, so the walk stops even if the draft goes on (drafts copied from
   * earlier answers can hold EOS).
   */
  accept(token: number): boolean;
  /**
   * Optional fast path for a pick that is deterministic and has no side effects worth undoing (greedy): whether
   * `token` may come next, found without computing a mask. Its unmasked choice being allowed proves it is also the
   * masked choice, so the mask is skipped. True may already advance the filter: `accept(token)` must follow.
   */
  allows?(token: number): boolean;
}
