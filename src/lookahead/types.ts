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
