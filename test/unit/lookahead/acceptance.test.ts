import { describe, expect, it } from 'vitest';
import { acceptanceCell, AcceptanceModel, rankClass } from '../../../src/lookahead/acceptance.js';
import { MAX_CONFIRMATIONS } from '../../../src/lookahead/recycled.js';
import { BudgetController, JobBudget } from '../../../src/lookahead/budget.js';
import { CostCurve } from '../../../src/lookahead/cost-curve.js';
import { Proposer } from '../../../src/lookahead/proposer.js';
import { RequestScope } from '../../../src/lookahead/scopes.js';
import { acceptedDepth } from '../../../src/lookahead/verify.js';
import { randomSequence, rng } from './fixtures.js';

describe('AcceptanceModel', () => {
  it('moves a cell toward what verification kept, keeps the order of raw shares within a cell, and never reaches 1', () => {
    const model = new AcceptanceModel();
    const trieCell = acceptanceCell(0, 0, false, false, true, 10, 0.5);
    const before = model.probability(trieCell, 0.5);
    expect(model.probability(trieCell, 0.2)).toBeLessThan(before);
    for (let i = 0; i < 200; i++) model.record(trieCell, 0.5, i % 10 === 0);
    // Accepted 1 in 10 at a raw share of 0.5: the factor falls to about 0.2.
    expect(model.probability(trieCell, 0.5)).toBeCloseTo(0.1, 1);
    const copyCell = acceptanceCell(20, 1, true, false, false, 0, 0);
    for (let i = 0; i < 200; i++) model.record(copyCell, 1, true);
    expect(model.probability(copyCell, 1)).toBeLessThan(1);
    expect(model.probability(copyCell, 1)).toBeGreaterThan(0.95);
  });

  it('learns what a kind of evidence is worth from any cell that holds it, for all cells of that kind', () => {
    const model = new AcceptanceModel();
    const first = acceptanceCell(0, 0, false, false, false, 0, 0, 1, rankClass(0, true, 0));
    const other = acceptanceCell(0, 0, false, false, false, 0, 0, 2, rankClass(0, true, 1));
    const confirmed = 1 + MAX_CONFIRMATIONS;
    const before = model.probability(other, 1, 2, confirmed);
    expect(model.probability(first, 1, 1, 1)).toBeCloseTo(model.probability(first, 1, 1, confirmed), 9);
    // Twice-confirmed first choices in one cell are always accepted, unconfirmed ones never: the other cell's
    // confirmed candidates, never recorded themselves, rise above its unconfirmed ones.
    for (let i = 0; i < 300; i++) {
      model.record(first, 1, true, 1, confirmed);
      model.record(first, 1, false, 1, 1);
    }
    expect(model.probability(other, 1, 2, confirmed)).toBeGreaterThan(before);
    expect(model.probability(other, 1, 2, confirmed)).toBeGreaterThan(1.5 * model.probability(other, 1, 2, 1));
    expect(model.probability(first, 1, 1, confirmed)).toBeLessThan(1);
  });

  it('tells evidence apart: copy length, agreement of matches, bigram vs unigram key, scope', () => {
    const cells = new Set([
      acceptanceCell(3, 1, true, false, false, 0, 0),
      acceptanceCell(40, 1, true, false, false, 0, 0),
      acceptanceCell(40, 0.4, true, false, false, 0, 0),
      acceptanceCell(0, 0, false, true, false, 5, 0.5),
      acceptanceCell(0, 0, false, false, false, 5, 0.5),
      acceptanceCell(0, 0, false, false, true, 5, 0.5),
      acceptanceCell(0, 0, false, false, true, 5, 0.5),
      acceptanceCell(0, 0, true, false, true, 5, 0.5),
    ]);
    expect(cells.size).toBe(7);
  });
});

/**
 * Greedy decoding replayed against a known answer with the real proposer, budget and floor: returns the forward time
 * relative to plain decoding's (cost curve of a CPU: a draft of 8 costs ×1.5 a single token), and the share of steps
 * that drafted, both over the answer from token `skip` on.
 */
function replay(prompt: number[], answer: number[], seed: number, skip = 0): { relativeSpeed: number; draftedShare: number } {
  const points = [
    { k: 1, ms: 10 },
    { k: 4, ms: 12.5 },
    { k: 8, ms: 15 },
    { k: 16, ms: 20 },
  ];
  // The controller's curve follows the noisy observations; the truth stays put.
  const truth = new CostCurve(points);
  const controller = new BudgetController(new CostCurve(points), { decodingLength: 16 });
  const scope = new RequestScope({ gramLength: 9 }, prompt);
  const proposer = new Proposer({ request: scope.trie, copies: [scope.copy] }, 16);
  const sizer = new JobBudget(() => controller, proposer);
  const context = new Int32Array(prompt.length + answer.length);
  context.set(prompt);
  let length = prompt.length;
  let ms = 0;
  let drafted = 0;
  let steps = 0;
  const random = rng(seed);
  for (let done = 0; done < answer.length; ) {
    sizer.prepare(context, length, 16, 8, false);
    const size = sizer.next(0);
    const draft = size > 1 ? proposer.propose(context, { decodingLength: size, branchLength: 8, layout: 'hier' }, false, length) : null;
    const s = draft ? draft.size : 1;
    const accepted = draft ? acceptedDepth(draft, answer, done) : 0;
    const forward = truth.cost(s) * (0.9 + 0.2 * random());
    sizer.observe(s, accepted, forward, s);
    if (done >= skip) {
      ms += forward;
      steps++;
      if (s > 1) drafted++;
    }
    const n = Math.min(accepted + 1, answer.length - done);
    const committed = answer.slice(done, done + n);
    for (const t of committed) context[length++] = t;
    proposer.accepted(committed);
    scope.pushOutput(committed);
    done += n;
  }
  return { relativeSpeed: ((answer.length - skip) * 10) / ms, draftedShare: drafted / steps };
}

describe('drafting economy: proposer, budget and floor together', () => {
  it('on text whose drafts do not pay, drafting switches off and decoding is not slower than plain', () => {
    const random = rng(5);
    const prompt = randomSequence(random, 2000, 200).map((t) => t + 1);
    const answer = randomSequence(random, 3000, 200).map((t) => t + 1);
    const { relativeSpeed, draftedShare } = replay(prompt, answer, 1);
    expect(relativeSpeed).toBeGreaterThan(0.97);
    expect(draftedShare).toBeLessThan(0.1);
  });

  it('when the text stops repeating, drafting stops paying and the floor switches it off', () => {
    const random = rng(7);
    const passage = randomSequence(random, 400, 300).map((t) => t + 1);
    const prompt = [...passage, ...randomSequence(random, 2000, 20).map((t) => t + 400)];
    // First the answer copies the passage (drafts pay, the acceptance model learns to trust copies), then it turns to
    // a 20-token alphabet the prompt also holds: plenty of short matches, nearly all wrong.
    const answer = [...passage, ...randomSequence(random, 3000, 20).map((t) => t + 400)];
    const { relativeSpeed, draftedShare } = replay(prompt, answer, 3, passage.length);
    expect(relativeSpeed).toBeGreaterThan(0.97);
    // The estimates alone would keep drafting a quarter of the steps here.
    expect(draftedShare).toBeLessThan(0.15);
  });

  it('on text that repeats its prompt, drafts wide and decodes far faster than plain', () => {
    const random = rng(6);
    const passage = randomSequence(random, 300, 500).map((t) => t + 1);
    const prompt = [...passage, ...randomSequence(random, 50, 500)];
    const answer = [...passage.slice(0, 150), ...passage.slice(100, 250)];
    const { relativeSpeed, draftedShare } = replay(prompt, answer, 2);
    expect(relativeSpeed).toBeGreaterThan(2.5);
    expect(draftedShare).toBeGreaterThan(0.8);
  });
});
