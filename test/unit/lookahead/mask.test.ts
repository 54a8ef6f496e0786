import { describe, expect, it } from 'vitest';
import { isChain, writeTreeMask, writeTreePositions } from '../../../src/lookahead/mask.js';
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
