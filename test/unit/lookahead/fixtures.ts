import { Rng } from '../../../src/engine/rng.js';
import type { TokenTrie } from '../../../src/lookahead/trie.js';
import type { DraftTree } from '../../../src/lookahead/types.js';

/** Seeded uniform [0, 1) generator: the engine's Rng, as a plain function. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.nextFloat();
}

export function randomSequence(random: () => number, length: number, vocab: number): number[] {
  return Array.from({ length }, () => Math.floor(random() * vocab));
}

/** Every key's paths (tokens joined by ',') with counts, as the trie holds them. */
export function triePaths(trie: TokenTrie): Map<number, Map<string, number>> {
  const out = new Map<number, Map<string, number>>();
  for (let key = 0; key < 1000; key++) {
    const root = trie.keyNode(key);
    if (root < 0) continue;
    const paths = new Map<string, number>();
    const walk = (node: number, prefix: number[]): void => {
      for (let c = trie.firstChild(node); c >= 0; c = trie.nextSibling(c)) {
        const path = [...prefix, trie.token(c)];
        paths.set(path.join(','), trie.count(c));
        walk(c, path);
      }
    };
    walk(root, []);
    out.set(key, paths);
  }
  return out;
}

/** The same, computed naively from the inserted sequences (cut at EOS; output skips stop-word keys). */
export function referencePaths(
  sequences: { ids: number[]; output: boolean }[],
  gramLength: number,
  eos: Set<number>,
  stops: Set<number>,
): Map<number, Map<string, number>> {
  const out = new Map<number, Map<string, number>>();
  for (const { ids, output } of sequences) {
    let cut = ids.findIndex((t) => eos.has(t));
    if (cut < 0) cut = ids.length;
    for (let i = 0; i < cut - 1; i++) {
      if (output && stops.has(ids[i])) continue;
      const gram = ids.slice(i + 1, Math.min(i + 1 + gramLength, cut));
      const paths = out.get(ids[i]) ?? new Map<string, number>();
      out.set(ids[i], paths);
      for (let d = 1; d <= gram.length; d++) {
        const key = gram.slice(0, d).join(',');
        paths.set(key, (paths.get(key) ?? 0) + 1);
      }
    }
  }
  return out;
}

/** Root-to-node token paths of every non-root node (root excluded from the path). */
export function draftPaths(draft: DraftTree): number[][] {
  const paths: number[][] = [[]];
  for (let i = 1; i < draft.size; i++) paths.push([...paths[draft.parent[i]], draft.tokens[i]]);
  return paths.slice(1);
}

/** Structural checks every draft must pass. */
export function assertValidTree(draft: DraftTree, maxNodes: number, maxDepth: number): string | null {
  if (draft.size < 1 || draft.size > maxNodes) return `size ${draft.size} outside [1, ${maxNodes}]`;
  if (draft.parent[0] !== -1 || draft.depth[0] !== 0) return 'bad root';
  for (let i = 1; i < draft.size; i++) {
    const p = draft.parent[i];
    if (p < 0 || p >= i) return `node ${i} has parent ${p}`;
    if (draft.depth[i] !== draft.depth[p] + 1) return `node ${i} has depth ${draft.depth[i]}`;
    if (draft.depth[i] > maxDepth) return `node ${i} deeper than ${maxDepth}`;
    // Pre-order: the parent is the previous node or one of its ancestors.
    let a = i - 1;
    while (a !== -1 && a !== p) a = draft.parent[a];
    if (a !== p) return `node ${i} breaks pre-order`;
  }
  return null;
}

/** A random pre-order tree: each node's parent is the previous node or one of its ancestors. */
export function randomTree(random: () => number, size: number): DraftTree {
  const tree: DraftTree = {
    size,
    tokens: new Int32Array(size),
    parent: new Int32Array(size),
    depth: new Int32Array(size),
  };
  tree.parent[0] = -1;
  for (let i = 1; i < size; i++) {
    let p = i - 1;
    while (p > 0 && random() < 0.4) p = tree.parent[p];
    tree.parent[i] = p;
    tree.depth[i] = tree.depth[p] + 1;
    tree.tokens[i] = Math.floor(random() * 50);
  }
  return tree;
}
