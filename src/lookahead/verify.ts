import type { DraftTree, TokenFilter } from './types.js';

/** Outcome of verifying one draft; reused step after step (see createVerifyResult). */
export interface VerifyResult {
  /** Draft node indices accepted, in path order, root excluded: the KV rows to keep are the root's and these. */
  acceptedNodes: Int32Array;
  acceptedCount: number;
  /** Accepted tokens followed by the bonus token (the last pick). */
  targets: Int32Array;
  /** acceptedCount + 1. */
  targetCount: number;
}

/**
 * The token that follows draft node `nodeIndex` (the model's argmax id for that row, or a draw from its logits);
 * called in path order, root first, once per node on the path.
 */
export type PickToken = (nodeIndex: number) => number;

/** A result able to hold the outcome of drafts up to `maxDepth` deep. */
export function createVerifyResult(maxDepth: number): VerifyResult {
  return {
    acceptedNodes: new Int32Array(maxDepth),
    acceptedCount: 0,
    targets: new Int32Array(maxDepth + 1),
    targetCount: 0,
  };
}

/**
 * Walks the draft from the root: the target is pick(current node); the walk descends into the child
 * holding that token if there is one, else stops. For greedy picks this is the longest path that plain decoding
 * would produce; for sampled picks it is speculative sampling with a one-hot proposal, hence distribution-exact.
 * The caller ends generation at EOS (drafts never contain it, so it can only be the bonus token).
 * With a filter, `pick` must pick under it (pickUnder: masked, or unmasked when the filter cheaply allows that
 * pick) and the walk advances the filter past each target: the walk follows one path and every target on it is committed, so the
 * filter never needs rolling back and its state after the walk is that of the committed tokens; a draft token it
 * forbids can never equal a target. The walk ends where the filter does. Filtered picks need the logits rows, not
 * in-graph argmax ids.
 */
export function verifyDraft(draft: DraftTree, pick: PickToken, out: VerifyResult, filter: TokenFilter | null = null): VerifyResult {
  const { size, tokens, parent, depth } = draft;
  let node = 0;
  let accepted = 0;
  for (;;) {
    const target = pick(node);
    out.targets[accepted] = target;
    if (filter && !filter.accept(target)) break;
    // Pre-order: node's children lie in its subtree range, which ends at the first node no deeper than it.
    let next = -1;
    for (let j = node + 1; j < size && depth[j] > depth[node]; j++) {
      if (parent[j] === node && tokens[j] === target) {
        next = j;
        break;
      }
    }
    if (next < 0) break;
    out.acceptedNodes[accepted++] = next;
    node = next;
  }
  out.acceptedCount = accepted;
  out.targetCount = accepted + 1;
  return out;
}

/**
 * A pick from a logits row under a filter, not yet accepted: the unmasked pick when the filter cheaply allows it,
 * else the masked one. A filtered job's PickToken reads its row through this.
 */
export function pickUnder(filter: TokenFilter, row: Float32Array, pick: (row: Float32Array) => number): number {
  if (filter.allows) {
    const quick = pick(row);
    if (filter.allows(quick)) return quick;
  }
  filter.mask(row);
  return pick(row);
}

/** True when the accepted nodes are 1..m, the first-child chain: the caller may truncate the KV instead of copying. */
export function acceptedIsPrefix(result: VerifyResult): boolean {
  for (let i = 0; i < result.acceptedCount; i++) if (result.acceptedNodes[i] !== i + 1) return false;
  return true;
}

/**
 * Depth of the longest draft path that spells targets[from], targets[from + 1], ...: what greedy verification accepts
 * when the model's greedy continuation is already known (offline replays of drafting, tests).
 */
export function acceptedDepth(draft: DraftTree, targets: ArrayLike<number>, from = 0): number {
  let node = 0;
  let depth = 0;
  while (from + depth < targets.length) {
    let next = -1;
    for (let j = node + 1; j < draft.size && next === -1; j++) if (draft.parent[j] === node && draft.tokens[j] === targets[from + depth]) next = j;
    if (next === -1) break;
    node = next;
    depth++;
  }
  return depth;
}
