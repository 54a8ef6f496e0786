import { describe, expect, it } from 'vitest';
import { Proposer } from '../../../src/lookahead/proposer.js';
import { TokenTrie } from '../../../src/lookahead/trie.js';
import type { DraftLayout, DraftTree } from '../../../src/lookahead/types.js';
import { assertValidTree, draftPaths, randomSequence, referencePaths, rng } from './fixtures.js';

const EOS = 0;

function filledTrie(seed: number, gramLength: number, vocab = 10): { trie: TokenTrie; ids: number[][] } {
  const random = rng(seed);
  const trie = new TokenTrie({ gramLength, eosIds: [EOS] });
  const ids: number[][] = [];
  for (let s = 0; s < 30; s++) {
    const seq = randomSequence(random, 40, vocab);
    ids.push(seq);
    trie.insert(seq);
  }
  return { trie, ids };
}

function copy(draft: DraftTree): { tokens: number[]; parent: number[]; depth: number[] } {
  return {
    tokens: [...draft.tokens.subarray(0, draft.size)],
    parent: [...draft.parent.subarray(0, draft.size)],
    depth: [...draft.depth.subarray(0, draft.size)],
  };
}

describe('Proposer retrieval against a brute-force n-gram reference', () => {
  const gramLength = 4;
  const { trie, ids } = filledTrie(21, gramLength);
  const ref = referencePaths(
    ids.map((s) => ({ ids: s, output: false })),
    gramLength,
    new Set([EOS]),
    new Set(),
  );

  it('with room for everything, drafts exactly the continuations stored after the root', () => {
    const proposer = new Proposer({ request: trie }, 4096);
    for (let root = 1; root < 10; root++) {
      const draft = proposer.propose([root], { decodingLength: 4096, branchLength: gramLength, layout: 'hier' });
      expect(assertValidTree(draft, 4096, gramLength)).toBeNull();
      const got = draftPaths(draft).map((p) => p.join(',')).sort();
      expect(got).toEqual([...(ref.get(root)?.keys() ?? [])].sort());
    }
  });

  it('under a budget, keeps the most frequent continuations (nothing left out beats anything kept)', () => {
    const proposer = new Proposer({ request: trie }, 64);
    for (const budget of [2, 5, 9, 17]) {
      for (let root = 1; root < 10; root++) {
        const draft = proposer.propose([root], { decodingLength: budget, branchLength: 3, layout: 'hier' });
        expect(assertValidTree(draft, budget, 3)).toBeNull();
        const paths = ref.get(root)!;
        const kept = new Set(draftPaths(draft).map((p) => p.join(',')));
        for (const p of kept) expect(paths.has(p)).toBe(true);
        const minKept = Math.min(...[...kept].map((p) => paths.get(p)!));
        for (const [p, count] of paths) {
          const parts = p.split(',');
          if (kept.has(p) || parts.length > 3) continue;
          const parentKept = parts.length === 1 || kept.has(parts.slice(0, -1).join(','));
          if (parentKept && kept.size === budget - 1) expect(count).toBeLessThanOrEqual(minKept);
        }
        // The first child chain follows the highest counts.
        if (draft.size > 1) {
          const best = Math.max(...[...paths].filter(([p]) => !p.includes(',')).map(([, c]) => c));
          expect(paths.get(String(draft.tokens[1]))).toBe(best);
        }
      }
    }
  });

  it('with two context tokens, drafts only continuations stored after them or after the root', () => {
    const proposer = new Proposer({ request: trie }, 32);
    const random = rng(3);
    for (let i = 0; i < 200; i++) {
      const q0 = 1 + Math.floor(random() * 9);
      const root = 1 + Math.floor(random() * 9);
      const draft = proposer.propose([5, q0, root], { decodingLength: 32, branchLength: 3, layout: 'hier' });
      expect(assertValidTree(draft, 32, 3)).toBeNull();
      for (const path of draftPaths(draft)) {
        const afterBigram = ref.get(q0)?.has([root, ...path].join(',')) ?? false;
        const afterRoot = ref.get(root)?.has(path.join(',')) ?? false;
        expect(afterBigram || afterRoot).toBe(true);
      }
    }
  });

  it('ranks a continuation seen after both context tokens above one seen after the root only', () => {
    const t = new TokenTrie({ gramLength: 3 });
    for (let i = 0; i < 3; i++) t.insert([3, 8, 5, 5]); // after the root 8: 5 (x3)
    t.insert([1, 8, 6, 6]); // after (1, 8): 6
    const draft = new Proposer({ request: t }, 8).propose([1, 8], { decodingLength: 2, branchLength: 3, layout: 'hier' });
    expect(draft.tokens[1]).toBe(6);
  });
});

describe('Proposer layouts', () => {
  const { trie } = filledTrie(4, 6, 6);
  const layouts: DraftLayout[] = ['hier', 'par', 'one'];

  it('produce valid trees within budget, of the right shape', () => {
    const proposer = new Proposer({ request: trie }, 40);
    const random = rng(9);
    for (let i = 0; i < 300; i++) {
      const context = randomSequence(random, 3, 6).map((t) => t || 1);
      const decodingLength = 1 + Math.floor(random() * 40);
      const branchLength = Math.floor(random() * 7);
      for (const layout of layouts) {
        const draft = proposer.propose(context, { decodingLength, branchLength, layout });
        expect(assertValidTree(draft, decodingLength, branchLength)).toBeNull();
        expect(draft.tokens[0]).toBe(context[2]);
        const children = new Map<number, number[]>();
        for (let n = 1; n < draft.size; n++) children.set(draft.parent[n], [...(children.get(draft.parent[n]) ?? []), n]);
        if (layout === 'one') for (let n = 1; n < draft.size; n++) expect(draft.parent[n]).toBe(n - 1);
        if (layout === 'par') for (const [p, c] of children) if (p !== 0) expect(c.length).toBe(1);
        if (layout === 'hier') {
          for (const c of children.values()) {
            const tokens = c.map((n) => draft.tokens[n]);
            expect(new Set(tokens).size).toBe(tokens.length);
          }
        }
      }
    }
  });

  it('par duplicates prefixes: its branches are the hier paths to leaves', () => {
    const proposer = new Proposer({ request: trie }, 64);
    const budget = { decodingLength: 12, branchLength: 4 };
    const hierTree = copy(proposer.propose([2, 3], { ...budget, layout: 'hier' }));
    const hier = draftPaths(proposer.propose([2, 3], { ...budget, layout: 'hier' })).map((p) => p.join(','));
    const par = proposer.propose([2, 3], { ...budget, layout: 'par' });
    for (const p of draftPaths(par)) expect(hier).toContain(p.join(','));
    expect(par.size).toBe(12);
    // The first branch is hier's first-child chain, the best path.
    let n = 1;
    while (n < hierTree.parent.length && hierTree.parent[n] === n - 1) n++;
    expect([...par.tokens.subarray(0, n)]).toEqual(hierTree.tokens.slice(0, n));
  });

  it('chainOnly gives the single best chain whatever the layout', () => {
    const proposer = new Proposer({ request: trie }, 32);
    const one = copy(proposer.propose([1, 2], { decodingLength: 32, branchLength: 5, layout: 'one' }));
    const chain = copy(proposer.propose([1, 2], { decodingLength: 32, branchLength: 5, layout: 'hier' }, true));
    expect(chain).toEqual(one);
    expect(one.tokens.length).toBeGreaterThan(1);
  });

  it('never drafts EOS', () => {
    const random = rng(17);
    const t = new TokenTrie({ gramLength: 5, eosIds: [EOS] });
    for (let s = 0; s < 50; s++) t.insert(randomSequence(random, 30, 5));
    const proposer = new Proposer({ request: t }, 64);
    for (let i = 0; i < 100; i++) {
      const context = randomSequence(random, 2, 5);
      for (const layout of layouts) {
        const draft = proposer.propose(context, { decodingLength: 64, branchLength: 5, layout });
        for (let n = 1; n < draft.size; n++) expect(draft.tokens[n]).not.toBe(EOS);
      }
    }
  });

  it('returns the root alone when nothing matches or the budget allows no draft', () => {
    const proposer = new Proposer({ request: trie }, 16);
    expect(proposer.propose([500], { decodingLength: 16, branchLength: 4, layout: 'hier' }).size).toBe(1);
    expect(proposer.propose([1, 2], { decodingLength: 1, branchLength: 4, layout: 'hier' }).size).toBe(1);
    expect(proposer.propose([1, 2], { decodingLength: 16, branchLength: 0, layout: 'hier' }).size).toBe(1);
  });

  it('skips a bare stop word as the only key', () => {
    const t = new TokenTrie({ gramLength: 3, stopWords: [9] });
    t.insert([9, 1, 2, 3]);
    const proposer = new Proposer({ request: t }, 8);
    expect(proposer.propose([4, 9], { decodingLength: 8, branchLength: 3, layout: 'hier' }).size).toBe(1);
    t.insert([4, 9, 5]);
    const draft = proposer.propose([4, 9], { decodingLength: 8, branchLength: 3, layout: 'hier' });
    expect(draftPaths(draft).map((p) => p.join(','))).toEqual(['5']);
  });
});

describe('Proposer scope mixing', () => {
  it('ranks request and global continuations by how often each kind was accepted', () => {
    const request = new TokenTrie({ gramLength: 2 });
    for (let t = 10; t < 30; t++) request.insert([1, t, t + 100]);
    const global = new TokenTrie({ gramLength: 2 });
    for (let i = 0; i < 50; i++) global.insert([1, 7, 8]);
    const proposer = new Proposer({ request, global }, 16);
    const budget = { decodingLength: 8, branchLength: 2, layout: 'hier' } as const;
    // Untrained, the global continuation (seen 50 times out of 50) outranks each request one (1 out of 20).
    let draft = proposer.propose([1], budget);
    expect(draft.size).toBe(8);
    expect(draft.tokens[1]).toBe(7);
    // The model keeps answering with request continuations: global ones were never accepted.
    for (let round = 0; round < 40; round++) {
      proposer.propose([1], budget);
      proposer.accepted([10 + (round % 3), 110 + (round % 3)]);
    }
    draft = proposer.propose([1], budget);
    const tokens = [...draft.tokens.subarray(1, draft.size)];
    expect(tokens[0]).toBeGreaterThanOrEqual(10);
    expect(tokens.indexOf(7) === -1 || tokens.indexOf(7) > tokens.findIndex((t) => t >= 10 && t < 30)).toBe(true);
  });

  it('prepares gains: expected accepted tokens per draft size, from the best nodes first', () => {
    const { trie } = filledTrie(8, 4);
    const proposer = new Proposer({ request: trie }, 16);
    const available = proposer.prepare([3, 5], 2, 16, 4);
    expect(available).toBeGreaterThan(4);
    expect(proposer.gains[1]).toBe(0);
    for (let k = 2; k <= available + 1; k++) {
      const step = proposer.gains[k] - proposer.gains[k - 1];
      expect(step).toBeGreaterThan(0);
      expect(step).toBeLessThanOrEqual(1);
      if (k > 2) expect(step).toBeLessThanOrEqual(proposer.gains[k - 1] - proposer.gains[k - 2] + 1e-12);
    }
    // propose right after emits the best `size` of that selection.
    const draft = proposer.propose([3, 5], { decodingLength: 5, branchLength: 4, layout: 'hier' });
    expect(draft.size).toBe(5);
  });

  it('drafts snapshot-restored tries exactly like the originals', () => {
    const { trie } = filledTrie(31, 5, 20);
    const restored = TokenTrie.restore(trie.snapshot());
    const local = new TokenTrie({ gramLength: 5 });
    local.insert([3, 4, 5, 6, 7, 8]);
    const a = new Proposer({ request: local, global: trie }, 32);
    const b = new Proposer({ request: local, global: restored }, 32);
    const random = rng(2);
    for (let i = 0; i < 200; i++) {
      const context = randomSequence(random, 2, 20);
      for (const layout of ['hier', 'par', 'one'] as const) {
        const budget = { decodingLength: 32, branchLength: 4, layout };
        expect(copy(b.propose(context, budget))).toEqual(copy(a.propose(context, budget)));
      }
    }
  });
});
