import { describe, expect, it } from 'vitest';
import type { DraftTree, TokenFilter } from '../../../src/lookahead/types.js';
import { createVerifyResult, pickUnder, verifyDraft, type PickToken } from '../../../src/lookahead/verify.js';
import { randomTree, rng } from './fixtures.js';

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** How the engine picks for a filtered job: each node's logits row, under the filter. */
function filteredPick(logits: Float32Array, vocab: number, filter: TokenFilter): PickToken {
  return (node) => pickUnder(filter, logits.subarray(node * vocab, (node + 1) * vocab), argmax);
}

/** A toy grammar over token ids: after token t only (t + 1) % vocab, (t + 2) % vocab and `end` may follow. */
class StepGrammar implements TokenFilter {
  readonly accepted: number[] = [];
  masks = 0;
  constructor(
    private last: number,
    private readonly vocab: number,
    private readonly end: number,
  ) {}
  allowed(t: number): boolean {
    return t === (this.last + 1) % this.vocab || t === (this.last + 2) % this.vocab || t === this.end;
  }
  mask(row: Float32Array): void {
    this.masks++;
    for (let t = 0; t < row.length; t++) if (!this.allowed(t)) row[t] = Number.NEGATIVE_INFINITY;
  }
  accept(token: number): boolean {
    if (!this.allowed(token)) throw new Error(`token ${token} not allowed after ${this.last}`);
    this.accepted.push(token);
    this.last = token;
    return token !== this.end;
  }
}

//  0(root:4) ─ 1:5 ─ 2:6 ─ 3:7
//            └ 4:9 ─ 5:0
const tree: DraftTree = {
  size: 6,
  tokens: Int32Array.of(4, 5, 6, 7, 9, 0),
  parent: Int32Array.of(-1, 0, 1, 2, 0, 4),
  depth: Int32Array.of(0, 1, 2, 1 + 2, 1, 2),
};

describe('verifyDraft with a token filter', () => {
  const vocab = 10;

  it('rejects a draft token the filter forbids even where the raw argmax matches it', () => {
    // Raw argmax of the root row is 9 (drafted at node 4), but after 4 only 5, 6 or the end token 3 may follow.
    const logits = new Float32Array(tree.size * vocab);
    logits[0 * vocab + 9] = 5;
    logits[0 * vocab + 6] = 1;
    const filter = new StepGrammar(4, vocab, 3);
    const r = verifyDraft(tree, filteredPick(logits, vocab, filter), createVerifyResult(8), filter);
    expect(r.acceptedCount).toBe(0);
    expect([...r.targets.subarray(0, r.targetCount)]).toEqual([6]);
    expect(filter.accepted).toEqual([6]);
  });

  it('follows allowed drafts, masking each row once, and leaves the filter at the committed tokens', () => {
    const logits = new Float32Array(tree.size * vocab);
    logits[0 * vocab + 5] = 2; // root → 5 (node 1)
    logits[1 * vocab + 6] = 2; // 5 → 6 (node 2)
    logits[2 * vocab + 2] = 9; // forbidden after 6: masked away
    logits[2 * vocab + 7] = 1; // 6 → 7 (node 3)
    logits[3 * vocab + 3] = 1; // bonus: the end token
    const filter = new StepGrammar(4, vocab, 3);
    const r = verifyDraft(tree, filteredPick(logits, vocab, filter), createVerifyResult(8), filter);
    expect([...r.acceptedNodes.subarray(0, r.acceptedCount)]).toEqual([1, 2, 3]);
    expect([...r.targets.subarray(0, r.targetCount)]).toEqual([5, 6, 7, 3]);
    expect(filter.accepted).toEqual([5, 6, 7, 3]);
    expect(filter.masks).toBe(4);
  });

  it('stops at the end token even where the draft goes on past it', () => {
    const draft: DraftTree = {
      size: 4,
      tokens: Int32Array.of(4, 5, 3, 4),
      parent: Int32Array.of(-1, 0, 1, 2),
      depth: Int32Array.of(0, 1, 2, 3),
    };
    const logits = new Float32Array(draft.size * vocab);
    logits[0 * vocab + 5] = 1;
    logits[1 * vocab + 3] = 1;
    const filter = new StepGrammar(4, vocab, 3);
    const r = verifyDraft(draft, filteredPick(logits, vocab, filter), createVerifyResult(8), filter);
    expect([...r.acceptedNodes.subarray(0, r.acceptedCount)]).toEqual([1]);
    expect([...r.targets.subarray(0, r.targetCount)]).toEqual([5, 3]);
    expect(filter.masks).toBe(2);
  });

  it('on random trees gives exactly what one masked pick after another gives', () => {
    const random = rng(7);
    const vocab = 50;
    let accepted = 0;
    for (let trial = 0; trial < 300; trial++) {
      const draft = randomTree(random, 12);
      // Mostly tokens the toy grammar allows after their parent, some it forbids.
      for (let i = 1; i < draft.size; i++) {
        if (random() < 0.7) draft.tokens[i] = (draft.tokens[draft.parent[i]] + (random() < 0.5 ? 1 : 2)) % vocab;
      }
      const logits = Float32Array.from({ length: draft.size * vocab }, () => random());
      // Plain filtered decoding along the same rows: pick from the row of the node whose token was committed.
      const walk = new StepGrammar(draft.tokens[0], vocab, 3);
      const r = verifyDraft(draft, filteredPick(logits.slice(), vocab, walk), createVerifyResult(16), walk);
      const plain = new StepGrammar(draft.tokens[0], vocab, 3);
      const expected: number[] = [];
      let node = 0;
      for (;;) {
        const row = logits.slice(node * vocab, (node + 1) * vocab);
        plain.mask(row);
        const t = argmax(row);
        const more = plain.accept(t);
        expected.push(t);
        if (!more) break;
        let next = -1;
        for (let j = 1; j < draft.size && next < 0; j++) if (draft.parent[j] === node && draft.tokens[j] === t) next = j;
        if (next < 0) break;
        node = next;
      }
      expect([...r.targets.subarray(0, r.targetCount)]).toEqual(expected);
      expect(walk.accepted).toEqual(expected);
      accepted += r.acceptedCount;
    }
    expect(accepted).toBeGreaterThan(100);
  });
});
