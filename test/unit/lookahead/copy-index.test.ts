import { describe, expect, it } from 'vitest';
import { CopyIndex, MIN_MATCH } from '../../../src/lookahead/copy-index.js';
import { Proposer } from '../../../src/lookahead/proposer.js';
import { TokenTrie } from '../../../src/lookahead/trie.js';
import { draftPaths, randomSequence, rng } from './fixtures.js';

/** Brute force: the longest suffix of context (>= MIN_MATCH) that occurs earlier with a continuation. */
function longestMatch(stored: number[][], context: number[]): number {
  let best = 0;
  for (const seq of stored) {
    for (let end = 0; end + 1 < seq.length; end++) {
      let len = 0;
      while (len <= end && len < context.length && seq[end - len] === context[context.length - 1 - len]) len++;
      best = Math.max(best, len);
    }
  }
  return best >= MIN_MATCH ? best : 0;
}

/** The longest match (`matches` with room for one): its stored position and length, or -1 and 0. */
function longest(index: CopyIndex, context: number[], n = context.length): { pos: number; len: number } {
  const pos = new Int32Array(1);
  const len = new Int32Array(1);
  return index.matches(context, n, pos, len) > 0 ? { pos: pos[0], len: len[0] } : { pos: -1, len: 0 };
}

describe('CopyIndex', () => {
  it('finds the longest earlier match of the context suffix and its continuation', () => {
    const index = new CopyIndex();
    index.append([5, 1, 2, 3, 9, 9]);
    index.endSequence();
    index.append([7, 0, 1, 2, 3, 4, 8]);
    index.endSequence();
    // Suffix 0,1,2,3 matches 4 tokens in the second sequence, only 3 in the first.
    const { pos, len } = longest(index, [6, 0, 1, 2, 3]);
    expect(len).toBe(4);
    expect(index.token(pos + 1)).toBe(4);
    expect(index.token(pos + 2)).toBe(8);
    // The continuation stops at the sequence boundary.
    expect(index.token(pos + 3)).toBe(-1);
  });

  it('agrees with a brute-force longest match on random sequences (short suffixes)', () => {
    const random = rng(7);
    const stored: number[][] = [];
    const index = new CopyIndex();
    for (let s = 0; s < 20; s++) {
      const seq = randomSequence(random, 30, 4);
      stored.push(seq);
      index.append(seq);
      index.endSequence();
    }
    for (let q = 0; q < 200; q++) {
      const context = randomSequence(random, 8, 4);
      const { pos, len } = longest(index, context);
      const expected = longestMatch(stored, context);
      // The chain search looks at the newest candidates only: it may settle for shorter, never report wrong.
      if (pos < 0) continue;
      expect(len).toBeGreaterThanOrEqual(MIN_MATCH);
      expect(len).toBeLessThanOrEqual(expected);
      for (let i = 0; i < len; i++) expect(index.token(pos - i)).toBe(context[context.length - 1 - i]);
      expect(index.token(pos + 1)).toBeGreaterThanOrEqual(0);
    }
  });

  it('lists several matches, longest first, newest first among equally long ones', () => {
    const index = new CopyIndex();
    for (const seq of [
      [9, 1, 2, 3, 10],
      [0, 1, 2, 3, 11],
      [8, 1, 2, 3, 12],
      [7, 0, 1, 2, 3, 13],
    ]) {
      index.append(seq);
      index.endSequence();
    }
    const positions = new Int32Array(3);
    const lengths = new Int32Array(3);
    const found = index.matches([5, 0, 1, 2, 3], 5, positions, lengths);
    expect(found).toBe(3);
    expect([...lengths]).toEqual([4, 4, 3]);
    expect([...positions].map((p) => index.token(p + 1))).toEqual([13, 11, 12]);
  });

  it('never matches the context against its own end (no continuation there)', () => {
    const index = new CopyIndex();
    const ids = [1, 2, 3, 4, 5, 6];
    index.append(ids);
    expect(longest(index, ids).pos).toBe(-1);
    index.append([1, 2, 3]);
    const { pos } = longest(index, [...ids, 1, 2, 3], 9);
    expect(index.token(pos + 1)).toBe(4);
  });

  it('drops the older half past its capacity and still finds recent sequences', () => {
    const index = new CopyIndex(64, 16);
    for (let s = 0; s < 40; s++) {
      index.append([100 + s, 1, 2, 200 + s]);
      index.endSequence();
    }
    expect(index.size).toBeLessThanOrEqual(64);
    const { pos } = longest(index, [139, 1, 2]);
    expect(index.token(pos + 1)).toBe(239);
    // The oldest sequences were dropped with their index entries.
    expect(longest(index, [100, 1, 2]).pos).toBe(-1);
  });
});

describe('Proposer with a copy source', () => {
  it('drafts the continuation of a long copied passage as the first branch even when trie counts favour another', () => {
    const trie = new TokenTrie({ gramLength: 8 });
    // After 3 the trie mostly saw 9, 9, 9...
    for (let i = 0; i < 5; i++) trie.insert([1, 2, 3, 9, 9, 9, 9]);
    trie.insert([1, 2, 3, 4, 5, 6, 7]);
    const passage = Array.from({ length: 30 }, (_, i) => 100 + i);
    const copy = new CopyIndex();
    copy.append([...passage, 1, 2, 3, 4, 5, 6, 7]);
    copy.endSequence();
    for (const layout of ['hier', 'par', 'one'] as const) {
      const proposer = new Proposer({ request: trie, copies: [copy] }, 16);
      const draft = proposer.propose([...passage, 1, 2, 3], { decodingLength: 5, branchLength: 6, layout });
      const paths = draftPaths(draft);
      expect(paths[3], layout).toEqual([4, 5, 6, 7]);
    }
  });

  it('ranks first the continuation that most earlier occurrences of the context agree on', () => {
    const trie = new TokenTrie({ gramLength: 4 });
    trie.insert([0, 1]);
    const copy = new CopyIndex();
    for (const next of [7, 8, 8, 8]) {
      copy.append([1, 2, 3, 4, next, next + 10]);
      copy.endSequence();
    }
    const proposer = new Proposer({ request: trie, copies: [copy] }, 16);
    const draft = proposer.propose([1, 2, 3, 4], { decodingLength: 4, branchLength: 2, layout: 'hier' });
    const paths = draftPaths(draft);
    expect(paths[0]).toEqual([8]);
    expect(paths[1]).toEqual([8, 18]);
    // The minority continuation is still drafted, after the majority's branch.
    expect(paths).toContainEqual([7]);
  });

  it('without a match, drafts exactly as without copy sources', () => {
    const random = rng(3);
    const trie = new TokenTrie({ gramLength: 5 });
    for (let s = 0; s < 20; s++) trie.insert(randomSequence(random, 40, 8));
    const copy = new CopyIndex();
    copy.append([50, 51, 52, 53]);
    const plain = new Proposer({ request: trie }, 32);
    const withCopy = new Proposer({ request: trie, copies: [copy] }, 32);
    for (let root = 0; root < 8; root++) {
      const context = [3, root];
      const a = plain.propose(context, { decodingLength: 12, branchLength: 4, layout: 'hier' });
      const pa = draftPaths(a);
      const b = withCopy.propose(context, { decodingLength: 12, branchLength: 4, layout: 'hier' });
      expect(draftPaths(b)).toEqual(pa);
    }
  });
});
