import { describe, expect, it } from 'vitest';
import { Proposer } from '../../../src/lookahead/proposer.js';
import { TokenTrie } from '../../../src/lookahead/trie.js';
import type { DraftTree } from '../../../src/lookahead/types.js';
import { acceptedIsPrefix, createVerifyResult, verifyDraft } from '../../../src/lookahead/verify.js';
import { randomTree, rng } from './fixtures.js';

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Picks the argmax of node i's row of row-major logits. */
function argmaxOf(logits: Float32Array, vocab: number): (node: number) => number {
  return (node) => argmax(logits.subarray(node * vocab, (node + 1) * vocab));
}

/** Logits whose argmax in row i is targets[i]. */
function logitsFor(targets: number[], vocab: number): Float32Array {
  const out = new Float32Array(targets.length * vocab);
  targets.forEach((t, i) => (out[i * vocab + t] = 1));
  return out;
}

//  0(root) ─ 1:5 ─ 2:6 ─ 3:7
//          │      └ 4:8
//          └ 5:9 ─ 6:1
const tree: DraftTree = {
  size: 7,
  tokens: Int32Array.of(4, 5, 6, 7, 8, 9, 1),
  parent: Int32Array.of(-1, 0, 1, 2, 1, 0, 5),
  depth: Int32Array.of(0, 1, 2, 3, 2, 1, 2),
};

describe('verifyDraft (greedy)', () => {
  const vocab = 10;
  const out = createVerifyResult(8);

  it('descends along matching children and ends with the bonus token', () => {
    const r = verifyDraft(tree, argmaxOf(logitsFor([5, 8, 0, 0, 3, 0, 0], vocab), vocab), out);
    expect([...r.acceptedNodes.subarray(0, r.acceptedCount)]).toEqual([1, 4]);
    expect([...r.targets.subarray(0, r.targetCount)]).toEqual([5, 8, 3]);
    expect(acceptedIsPrefix(r)).toBe(false);
  });

  it('accepts the whole first-child chain, reported as a prefix', () => {
    const r = verifyDraft(tree, argmaxOf(logitsFor([5, 6, 7, 2, 0, 0, 0], vocab), vocab), out);
    expect([...r.acceptedNodes.subarray(0, r.acceptedCount)]).toEqual([1, 2, 3]);
    expect([...r.targets.subarray(0, r.targetCount)]).toEqual([5, 6, 7, 2]);
    expect(acceptedIsPrefix(r)).toBe(true);
  });

  it('accepts a later branch and nothing when the root misses', () => {
    let r = verifyDraft(tree, argmaxOf(logitsFor([9, 0, 0, 0, 0, 1, 1], vocab), vocab), out);
    expect([...r.acceptedNodes.subarray(0, r.acceptedCount)]).toEqual([5, 6]);
    expect([...r.targets.subarray(0, r.targetCount)]).toEqual([9, 1, 1]);
    r = verifyDraft(tree, argmaxOf(logitsFor([2, 6, 7, 2, 0, 0, 0], vocab), vocab), out);
    expect(r.acceptedCount).toBe(0);
    expect([...r.targets.subarray(0, r.targetCount)]).toEqual([2]);
  });

  it('finds the longest matching path on random trees', () => {
    const random = rng(6);
    const result = createVerifyResult(64);
    for (let trial = 0; trial < 300; trial++) {
      const size = 1 + Math.floor(random() * 30);
      const t = randomTree(random, size);
      for (let i = 0; i < size; i++) t.tokens[i] = i; // unique tokens: every path is unambiguous
      // Each row's argmax is one of its children's tokens most of the time.
      const targets = Array.from({ length: size }, (_, i) => {
        const kids = [...t.parent.subarray(0, size)].flatMap((p, j) => (p === i ? [j] : []));
        return kids.length > 0 && random() < 0.8 ? kids[Math.floor(random() * kids.length)] : size + 1;
      });
      const picked: number[] = [];
      const pick = argmaxOf(logitsFor(targets, size + 2), size + 2);
      const r = verifyDraft(t, (node) => (picked.push(node), pick(node)), result);
      // Reference: follow the targets from the root.
      const path: number[] = [];
      for (let node = 0; targets[node] < size; node = targets[node]) path.push(targets[node]);
      expect([...r.acceptedNodes.subarray(0, r.acceptedCount)]).toEqual(path);
      expect(picked).toEqual([0, ...path]);
      expect(r.targets[r.targetCount - 1]).toBe(targets[path.length ? path[path.length - 1] : 0]);
    }
  });
});

describe('verifyDraft (sampling) is distribution-exact', () => {
  const V = 4;
  const L = 3;

  /** A fake model: the next-token distribution depends on the last two tokens. */
  function probs(a: number, b: number): number[] {
    const w = Array.from({ length: V }, (_, k) => 1 + ((a * 7 + b * 3 + k * 5 + a * b * k) % 6));
    const s = w.reduce((x, y) => x + y, 0);
    return w.map((x) => x / s);
  }

  function sample(p: ArrayLike<number>, random: () => number): number {
    let u = random();
    for (let k = 0; k < V - 1; k++) {
      u -= p[k];
      if (u < 0) return k;
    }
    return V - 1;
  }

  function softmax(row: Float32Array): number[] {
    const m = Math.max(...row);
    const e = [...row].map((x) => Math.exp(x - m));
    const s = e.reduce((x, y) => x + y, 0);
    return e.map((x) => x / s);
  }

  function chiSquare(counts: Map<string, number>, n: number, exact: Map<string, number>): number {
    let chi = 0;
    for (const [key, p] of exact) {
      const o = counts.get(key) ?? 0;
      chi += (o - n * p) ** 2 / (n * p);
    }
    return chi;
  }

  it('matches plain sampling (chi-square over all 3-token continuations)', () => {
    const prompt = [1, 2];
    const exact = new Map<string, number>();
    for (let x = 0; x < V ** L; x++) {
      const seq = [...prompt];
      let p = 1;
      for (let d = 0; d < L; d++) {
        const t = Math.floor(x / V ** d) % V;
        p *= probs(seq[seq.length - 2], seq[seq.length - 1])[t];
        seq.push(t);
      }
      exact.set(seq.slice(2).join(','), p);
    }

    // Drafts come from text the model itself would write, so they are often (not always) right.
    const trie = new TokenTrie({ gramLength: L + 1 });
    const warm = rng(99);
    for (let s = 0; s < 40; s++) {
      const seq = [1, 2];
      for (let i = 0; i < 12; i++) seq.push(sample(probs(seq[seq.length - 2], seq[seq.length - 1]), warm));
      trie.insert(seq);
    }
    const proposer = new Proposer({ request: trie }, 8);
    const result = createVerifyResult(8);
    const N = 20000;

    const plain = new Map<string, number>();
    const random = rng(1234);
    for (let n = 0; n < N; n++) {
      const seq = [...prompt];
      for (let d = 0; d < L; d++) seq.push(sample(probs(seq[seq.length - 2], seq[seq.length - 1]), random));
      const key = seq.slice(2).join(',');
      plain.set(key, (plain.get(key) ?? 0) + 1);
    }

    const drafted = new Map<string, number>();
    const random2 = rng(4321);
    let accepted = 0;
    let steps = 0;
    const logits = new Float32Array(8 * V);
    for (let n = 0; n < N; n++) {
      const seq = [...prompt];
      while (seq.length < prompt.length + L) {
        const draft = proposer.propose(seq, { decodingLength: 8, branchLength: L, layout: 'hier' });
        // Logits of each node: the model's distribution given the context extended by the path to the node.
        const paths: number[][] = [[]];
        for (let i = 1; i < draft.size; i++) paths.push([...paths[draft.parent[i]], draft.tokens[i]]);
        for (let i = 0; i < draft.size; i++) {
          const ctx = [...seq, ...paths[i]];
          const p = probs(ctx[ctx.length - 2], ctx[ctx.length - 1]);
          for (let k = 0; k < V; k++) logits[i * V + k] = Math.log(p[k]);
        }
        const r = verifyDraft(draft, (node) => sample(softmax(logits.subarray(node * V, (node + 1) * V)), random2), result);
        accepted += r.acceptedCount;
        steps++;
        for (let i = 0; i < r.targetCount; i++) seq.push(r.targets[i]);
      }
      const key = seq.slice(2, 2 + L).join(',');
      drafted.set(key, (drafted.get(key) ?? 0) + 1);
    }

    // 63 degrees of freedom: the 0.1% critical value is about 103.4.
    expect(chiSquare(plain, N, exact)).toBeLessThan(103.4);
    expect(chiSquare(drafted, N, exact)).toBeLessThan(103.4);
    // Drafting actually happened: well over one token per step.
    expect(accepted / steps).toBeGreaterThan(0.3);
  });
});
