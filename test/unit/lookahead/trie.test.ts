import { describe, expect, it } from 'vitest';
import { OutputStreamInserter } from '../../../src/lookahead/stream-insert.js';
import { TokenTrie, TrieSnapshotError } from '../../../src/lookahead/trie.js';
import { randomSequence, referencePaths, rng, triePaths } from './fixtures.js';

const EOS = 99;
const STOP = 7;

function sortedAndIndexed(trie: TokenTrie): boolean {
  for (let key = 0; key < 1000; key++) {
    const root = trie.keyNode(key);
    if (root < 0) continue;
    const stack = [root];
    while (stack.length) {
      const node = stack.pop()!;
      let prev = Infinity;
      for (let c = trie.firstChild(node); c >= 0; c = trie.nextSibling(c)) {
        if (trie.count(c) > prev || trie.count(c) > trie.count(node) || trie.child(node, trie.token(c)) !== c) return false;
        prev = trie.count(c);
        stack.push(c);
      }
    }
  }
  return true;
}

describe('TokenTrie', () => {
  it('holds exactly the prefix counts of the inserted n-grams (brute-force reference)', () => {
    for (const seed of [1, 2, 3]) {
      const random = rng(seed);
      const gramLength = 1 + (seed % 4);
      const trie = new TokenTrie({ gramLength, eosIds: [EOS], stopWords: [STOP] });
      const sequences: { ids: number[]; output: boolean }[] = [];
      for (let s = 0; s < 40; s++) {
        const ids = randomSequence(random, 5 + Math.floor(random() * 40), 9);
        if (random() < 0.3) ids.splice(Math.floor(random() * ids.length), 0, EOS, 1, 2, 3);
        const output = random() < 0.5;
        sequences.push({ ids, output });
        trie.insert(ids, output);
      }
      const expected = referencePaths(sequences, gramLength, new Set([EOS]), new Set([STOP]));
      const actual = triePaths(trie);
      expect(actual).toEqual(expected);
      expect(sortedAndIndexed(trie)).toBe(true);
      const nodes = [...actual].reduce((n, [, paths]) => n + 1 + paths.size, 0);
      expect(trie.nodeCount).toBe(nodes);
    }
  });

  it('streams output token by token: after every push, exactly the bulk output insert of the tokens so far', () => {
    const random = rng(11);
    const ids = randomSequence(random, 300, 12);
    ids[250] = EOS;
    const streamed = new TokenTrie({ gramLength: 5, eosIds: [EOS], stopWords: [STOP] });
    const stream = new OutputStreamInserter(streamed);
    let at = 0;
    while (at < ids.length) {
      const n = 1 + Math.floor(random() * 7);
      stream.push(ids.slice(at, at + n));
      at += n;
      const bulk = new TokenTrie({ gramLength: 5, eosIds: [EOS], stopWords: [STOP] });
      bulk.insert(ids.slice(0, at), true);
      expect(triePaths(streamed), `after ${at} tokens`).toEqual(triePaths(bulk));
      expect(streamed.nodeCount).toBe(bulk.nodeCount);
    }
    stream.finish();
    const bulk = new TokenTrie({ gramLength: 5, eosIds: [EOS], stopWords: [STOP] });
    bulk.insert(ids, true);
    expect(triePaths(streamed)).toEqual(triePaths(bulk));
  });

  it('streams with gramLength 1 and keeps streaming after finish() like a fresh stream', () => {
    const one = new TokenTrie({ gramLength: 1 });
    const stream = new OutputStreamInserter(one);
    stream.push([1, 2, 3, 1, 2]);
    stream.finish();
    stream.push([7, 8]);
    const bulk = new TokenTrie({ gramLength: 1 });
    bulk.insert([1, 2, 3, 1, 2], true);
    bulk.insert([7, 8], true);
    expect(triePaths(one)).toEqual(triePaths(bulk));
  });

  it('closes its open n-grams when a squeeze frees nodes, and stays consistent', () => {
    const random = rng(5);
    const trie = new TokenTrie({ gramLength: 6, maxNodes: 200 });
    const stream = new OutputStreamInserter(trie);
    for (let i = 0; i < 200; i++) stream.push(randomSequence(random, 3, 30));
    expect(trie.nodeCount).toBeLessThanOrEqual(200);
    // Every stored path is a real n-gram prefix with counts that never grow going down.
    for (const [, paths] of triePaths(trie)) {
      for (const [path, count] of paths) {
        const parent = path.split(',').slice(0, -1).join(',');
        if (parent) expect(paths.get(parent)!).toBeGreaterThanOrEqual(count);
      }
    }
  });

  it('never stores EOS nor anything after it', () => {
    const trie = new TokenTrie({ gramLength: 4, eosIds: [EOS] });
    trie.insert([1, 2, EOS, 3, 4, 5]);
    expect(triePaths(trie)).toEqual(new Map([[1, new Map([['2', 1]])]]));
  });

  it('keeps the node budget under a long random stream and retains frequent n-grams', () => {
    const random = rng(5);
    const trie = new TokenTrie({ gramLength: 8, maxNodes: 3000 });
    const stream = new OutputStreamInserter(trie);
    const motif = [40, 41, 42, 43, 44, 45, 46, 47, 48];
    let peak = 0;
    for (let i = 0; i < 4000; i++) {
      stream.push(i % 5 === 0 ? motif : randomSequence(random, 8, 400));
      peak = Math.max(peak, trie.nodeCount);
    }
    stream.finish();
    expect(peak).toBeLessThanOrEqual(3000);
    expect(sortedAndIndexed(trie)).toBe(true);
    let node = trie.keyNode(40);
    for (const t of motif.slice(1)) {
      node = trie.child(node, t);
      expect(node).toBeGreaterThanOrEqual(0);
    }
  });

  it('restores from a snapshot to an identical trie', () => {
    const random = rng(8);
    const trie = new TokenTrie({ gramLength: 6, maxNodes: 5000 });
    for (let i = 0; i < 200; i++) trie.insert(randomSequence(random, 30, 50), i % 2 === 0);
    const bytes = trie.snapshot();
    const copy = TokenTrie.restore(bytes, { maxNodes: 5000 });
    expect(copy.gramLength).toBe(6);
    expect(copy.nodeCount).toBe(trie.nodeCount);
    expect(triePaths(copy)).toEqual(triePaths(trie));
    expect(copy.snapshot()).toEqual(bytes);
    expect(sortedAndIndexed(copy)).toBe(true);
    // The restored trie keeps learning like the original.
    const more = randomSequence(random, 500, 50);
    trie.insert(more);
    copy.insert(more);
    expect(copy.snapshot()).toEqual(trie.snapshot());
    // Sibling order survives too: identical first children everywhere.
    for (let key = 0; key < 50; key++) {
      const a = trie.keyNode(key);
      const b = copy.keyNode(key);
      if (a < 0) continue;
      expect(copy.token(copy.firstChild(b))).toBe(trie.token(trie.firstChild(a)));
    }
  });

  it('rejects damaged snapshots', () => {
    const trie = new TokenTrie({ gramLength: 3 });
    trie.insert([1, 2, 3, 4, 5]);
    const bytes = trie.snapshot();
    expect(() => TokenTrie.restore(bytes.subarray(0, bytes.length - 4))).toThrow(TrieSnapshotError);
    const bad = bytes.slice();
    bad[0] ^= 0xff;
    expect(() => TokenTrie.restore(bad)).toThrow(TrieSnapshotError);
  });
});

describe('TokenTrie.restore on crafted bytes', () => {
  it('refuses nesting deeper than the n-gram length without exhausting the stack', () => {
    const depth = 200_000;
    const bytes = new Uint8Array(4 * (5 + 3 * depth));
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 0x5254414c, true);
    view.setUint32(4, 1, true);
    view.setUint32(8, 4, true);
    view.setUint32(12, 1, true);
    view.setUint32(16, depth, true);
    for (let i = 0; i < depth; i++) {
      view.setInt32(20 + 12 * i, 5, true);
      view.setInt32(24 + 12 * i, 1, true);
      view.setUint32(28 + 12 * i, i < depth - 1 ? 1 : 0, true);
    }
    expect(() => TokenTrie.restore(bytes)).toThrow(/nests deeper/);
    view.setUint32(8, 1_000_000, true);
    expect(() => TokenTrie.restore(bytes)).toThrow(/out of range/);
  });
});
