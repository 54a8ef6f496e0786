import type { DraftTree } from './types.js';

/**
 * Additive attention bias for a draft tree, row-major [S, past + S] into `out` (S = draft.size): each node attends
 * to all `past` cached rows, to its ancestors and to itself (0), and to nothing else (-Infinity).
 * Pre-order means a parent's row is written before its children's, so a child's row is its parent's plus itself.
 * `pastZeroed`: the caller keeps the buffer zero outside the tree blocks (see clearTreeMask), so only the S x S
 * block is written: O(S^2) per step instead of O(S * past).
 */
export function writeTreeMask(draft: DraftTree, past: number, out: Float32Array, pastZeroed = false): void {
  const s = draft.size;
  const width = past + s;
  if (out.length < s * width) throw new RangeError(`mask buffer holds ${out.length} floats, needs ${s * width}`);
  for (let i = 0; i < s; i++) {
    const row = i * width;
    if (!pastZeroed) out.fill(0, row, row + past);
    const p = draft.parent[i];
    if (p < 0) out.fill(-Infinity, row + past, row + width);
    else out.copyWithin(row + past, p * width + past, p * width + width);
    out[row + past + i] = 0;
  }
}

/** Zeroes the tree block that `writeTreeMask(draft of `size` nodes, past)` wrote, leaving the buffer all zero. */
export function clearTreeMask(size: number, past: number, out: Float32Array): void {
  const width = past + size;
  for (let i = 0; i < size; i++) out.fill(0, i * width + past, (i + 1) * width);
}

/** Absolute positions of the draft's nodes: past length + depth. */
export function writeTreePositions(draft: DraftTree, past: number, out: Int32Array): void {
  for (let i = 0; i < draft.size; i++) out[i] = past + draft.depth[i];
}

/** True when every node's parent is the node before it: a plain causal mask (or none) will do. */
export function isChain(draft: DraftTree): boolean {
  for (let i = 1; i < draft.size; i++) if (draft.parent[i] !== i - 1) return false;
  return true;
}
