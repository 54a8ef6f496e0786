import { describe, expect, it } from 'vitest';
import { clearTreeMask, isChain, writeTreeMask, writeTreePositions } from '../../../src/lookahead/mask.js';
import type { DraftTree } from '../../../src/lookahead/types.js';
import { randomTree, rng } from './fixtures.js';

function isAncestorOrSelf(tree: DraftTree, a: number, i: number): boolean {
  for (let n = i; n !== -1; n = tree.parent[n]) if (n === a) return true;
  return false;
}

describe('tree mask and positions', () => {
  it('let each node see all the past, its ancestors and itself, nothing else', () => {
    const random = rng(3);
    for (let trial = 0; trial < 200; trial++) {
      const size = 1 + Math.floor(random() * 24);
      const past = Math.floor(random() * 10);
      const tree = randomTree(random, size);
      const out = new Float32Array(size * (past + size) + 5).fill(7);
      writeTreeMask(tree, past, out);
      const width = past + size;
      for (let i = 0; i < size; i++) {
        for (let j = 0; j < past; j++) expect(out[i * width + j]).toBe(0);
        for (let j = 0; j < size; j++) {
          expect(out[i * width + past + j]).toBe(isAncestorOrSelf(tree, j, i) ? 0 : -Infinity);
        }
      }
      expect(out[size * width]).toBe(7);
      const positions = new Int32Array(size);
      writeTreePositions(tree, past, positions);
      for (let i = 0; i < size; i++) {
        let depth = 0;
        for (let n = i; tree.parent[n] !== -1; n = tree.parent[n]) depth++;
        expect(positions[i]).toBe(past + depth);
      }
    }
  });

  it('rejects a buffer too small', () => {
    const tree = randomTree(rng(1), 4);
    expect(() => writeTreeMask(tree, 3, new Float32Array(27))).toThrow(RangeError);
  });

  it('recognises chains', () => {
    const chain: DraftTree = { size: 3, tokens: new Int32Array(3), parent: Int32Array.of(-1, 0, 1), depth: Int32Array.of(0, 1, 2) };
    expect(isChain(chain)).toBe(true);
    chain.parent[2] = 0;
    chain.depth[2] = 1;
    expect(isChain(chain)).toBe(false);
  });
});

describe('writeTreeMask over a kept-zero buffer', () => {
  it('writes only the tree block and clearTreeMask leaves the buffer all zero, for changing sizes and pasts', () => {
    const buf = new Float32Array(8 * 40);
    const full = new Float32Array(8 * 40);
    const drafts: DraftTree[] = [
      { size: 3, tokens: Int32Array.of(1, 2, 3), parent: Int32Array.of(-1, 0, 0), depth: Int32Array.of(0, 1, 1) },
      { size: 5, tokens: Int32Array.of(1, 2, 3, 4, 5), parent: Int32Array.of(-1, 0, 1, 1, 0), depth: Int32Array.of(0, 1, 2, 2, 1) },
      { size: 2, tokens: Int32Array.of(1, 2), parent: Int32Array.of(-1, 0), depth: Int32Array.of(0, 1) },
    ];
    for (const [past, draft] of [[10, drafts[0]], [11, drafts[1]], [14, drafts[2]], [15, drafts[1]]] as const) {
      const n = draft.size * (past + draft.size);
      writeTreeMask(draft, past, buf.subarray(0, n), true);
      full.fill(7);
      writeTreeMask(draft, past, full.subarray(0, n));
      expect([...buf.subarray(0, n)]).toEqual([...full.subarray(0, n)]);
      clearTreeMask(draft.size, past, buf.subarray(0, n));
      expect(buf.every((v) => v === 0)).toBe(true);
    }
  });
});
