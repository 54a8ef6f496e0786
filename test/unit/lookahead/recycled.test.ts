import { describe, expect, it } from 'vitest';
import { ORIGIN_RECYCLED, ORIGIN_REQUEST } from '../../../src/lookahead/candidate-tree.js';
import { Proposer } from '../../../src/lookahead/proposer.js';
import { AGREE_BOTH_SAME_REQUEST, AGREE_NONE, AGREE_NONE_SAME_REQUEST, AGREE_PREVIOUS, MAX_CONFIRMATIONS, firstPromptRowRecycled, RecycledTable, topIds } from '../../../src/lookahead/recycled.js';
import { RequestScope } from '../../../src/lookahead/scopes.js';
import { acceptedDepth } from '../../../src/lookahead/verify.js';
import { rng } from './fixtures.js';

describe('RecycledTable', () => {
  it('keeps the latest successors of each token, best first, under the token and after the token before it', () => {
    const table = new RecycledTable(100, 4);
    expect(table.bytes).toBe(0);
    expect(table.find(7, -1)).toBe(-1);
    table.record(7, [9, 3, 5, 1], 0, 4, 6);
    const slot = table.find(7, -1);
    expect([0, 1, 2, 3].map((r) => table.successor(slot, r))).toEqual([9, 3, 5, 1]);
    expect(table.rankOf(slot, 5)).toBe(2);
    expect(table.rankOf(slot, 8)).toBe(-1);
    // After another token, 7's latest row replaces its token slot; after 6, its bigram slot still holds the first.
    table.record(7, [0, 0, 4, 2], 2, 2, 8);
    expect([0, 1, 2].map((r) => table.successor(table.find(7, 8), r))).toEqual([4, 2, -1]);
    expect([0, 1, 2].map((r) => table.successor(table.find(7, 5), r))).toEqual([4, 2, -1]);
    expect(table.successor(table.find(7, 6), 0)).toBe(9);
    // 128 token slots for a vocabulary of 100: token 135 takes token 7's.
    table.record(135, [1, 2, 3, 4]);
    expect(table.find(7, -1)).toBe(-1);
    expect(table.successor(table.find(135, -1), 0)).toBe(1);
    // Per slot (128 by token, 256 by bigram, 256 by trigram): its token, 4 successors, the 2 tokens before it, a
    // request tag and a confirmation count.
    expect(table.bytes).toBe((128 + 256 + 256) * (4 * (1 + 4 + 2 + 1) + 1));
  });

  it('prefers the ranking made after the same two tokens, then after the same one, then any', () => {
    const table = new RecycledTable(100, 2);
    table.record(7, [1, 2], 0, 2, 5, 4);
    table.record(7, [3, 4], 0, 2, 5, 6);
    table.record(7, [8, 9], 0, 2, 2, 6);
    expect(table.successor(table.find(7, 5, 4), 0)).toBe(1);
    expect(table.successor(table.find(7, 5, 6), 0)).toBe(3);
    expect(table.successor(table.find(7, 5, 3), 0)).toBe(3);
    expect(table.successor(table.find(7, 5), 0)).toBe(3);
    expect(table.successor(table.find(7, 1, 4), 0)).toBe(8);
  });

  it('counts how many rows in a row kept the same first choice, up to a cap, and starts over when it changes', () => {
    const table = new RecycledTable(100, 2);
    table.record(7, [9, 3]);
    expect(table.confirmations(table.find(7, -1))).toBe(0);
    table.record(7, [9, 5]);
    expect(table.confirmations(table.find(7, -1))).toBe(1);
    for (let i = 0; i < 5; i++) table.record(7, [9, 1]);
    expect(table.confirmations(table.find(7, -1))).toBe(MAX_CONFIRMATIONS);
    table.record(7, [3, 9]);
    expect(table.confirmations(table.find(7, -1))).toBe(0);
    // Another token taking the slot does not inherit the count (token 135 shares token 7's slot).
    table.record(135, [3, 9]);
    expect(table.confirmations(table.find(135, -1))).toBe(0);
  });

  it('tells how well the context a ranking was made in agrees with the current one', () => {
    const table = new RecycledTable(100, 2);
    table.record(7, [9, 3], 0, 2, 5, 6, 1);
    const slot = table.find(7, 5);
    expect(table.agreement(slot, 5, 6, 1)).toBe(AGREE_BOTH_SAME_REQUEST);
    expect(table.agreement(slot, 5, 6, 2)).toBe(AGREE_PREVIOUS);
    expect(table.agreement(slot, 5, 8, 1)).toBe(AGREE_PREVIOUS);
    expect(table.agreement(table.find(7, 4), 4, 6, 1)).toBe(AGREE_NONE_SAME_REQUEST);
    expect(table.agreement(table.find(7, 4), 4, 6, 2)).toBe(AGREE_NONE);
  });

  it('topIds ranks a row as a full sort does, the lower id first on ties', () => {
    const random = rng(3);
    for (let trial = 0; trial < 50; trial++) {
      const row = Float32Array.from({ length: 300 }, () => Math.round(random() * 40) / 4);
      const out = new Int32Array(10).fill(99);
      topIds(row, out, 2, 8);
      const sorted = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
      expect(Array.from(out.subarray(2))).toEqual(sorted.slice(0, 8));
      expect(Array.from(out.subarray(0, 2))).toEqual([99, 99]);
    }
  });
});

describe('Proposer with a recycled table', () => {
  it('drafts what the model said after each token where retrieval finds nothing, and credits it', () => {
    const scope = new RequestScope({ gramLength: 5 }, [1, 2, 3, 4]);
    const table = new RecycledTable(64);
    table.record(20, [21, 30, 31]);
    table.record(21, [22, 32]);
    table.record(22, [23]);
    const proposer = new Proposer({ request: scope.trie, copies: [scope.copy], recycled: table }, 16);
    const context = [1, 2, 3, 4, 20];
    const draft = proposer.propose(context, { decodingLength: 16, branchLength: 4, layout: 'hier' });
    // The model's first choices, chained: 21, 22, 23.
    expect(acceptedDepth(draft, [21, 22, 23, 24])).toBe(3);
    proposer.accepted([21, 22, 23, 24]);
    expect(proposer.acceptedByOrigin[ORIGIN_RECYCLED]).toBe(3);
  });

  it('extends a retrieved branch past where retrieval stops, and ranks retrieved candidates by the model', () => {
    // After 5 the prompt holds both 6 and 8; the model ranks 8 first.
    const scope = new RequestScope({ gramLength: 3 }, [5, 6, 1, 5, 6, 2, 5, 8, 9, 3]);
    const table = new RecycledTable(64);
    table.record(5, [8]);
    table.record(9, [10, 11]);
    table.record(10, [12]);
    const proposer = new Proposer({ request: scope.trie, recycled: table }, 4);
    const draft = proposer.propose([7, 5], { decodingLength: 4, branchLength: 6, layout: 'one' });
    expect(Array.from(draft.tokens.subarray(1, draft.size))).toEqual([8, 9, 10]);
    proposer.accepted([8, 9, 10, 12]);
    expect(proposer.acceptedByOrigin[ORIGIN_REQUEST | ORIGIN_RECYCLED]).toBe(1);
    expect(proposer.acceptedByOrigin[ORIGIN_REQUEST]).toBe(1);
    expect(proposer.acceptedByOrigin[ORIGIN_RECYCLED]).toBe(1);
  });
});

describe('the prompt rows the table learns from', () => {
  it('are all of them where the LM head is cheap, the last 256 where it is dear (or unknown)', () => {
    expect(firstPromptRowRecycled(4096, 0.03)).toBe(0);
    expect(firstPromptRowRecycled(4096, 0.26)).toBe(3840);
    expect(firstPromptRowRecycled(4096)).toBe(3840);
    expect(firstPromptRowRecycled(100, 0.26)).toBe(0);
  });
});
