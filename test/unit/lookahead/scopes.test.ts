import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Proposer } from '../../../src/lookahead/proposer.js';
import { GlobalTries, RequestScope, RequestTrie, SessionStore } from '../../../src/lookahead/scopes.js';
import { TrieSnapshotError } from '../../../src/lookahead/trie.js';
import { draftPaths } from './fixtures.js';

const settings = { gramLength: 4, eosIds: [0] };
const budget = { decodingLength: 16, branchLength: 3, layout: 'hier' as const };

function drafts(proposer: Proposer, context: number[]): string[] {
  return draftPaths(proposer.propose(context, budget)).map((p) => p.join(','));
}

describe('RequestScope', () => {
  it('drafts from the prompt, from the prediction right after the prompt, and from its own streamed output', () => {
    const scope = new RequestScope(settings, [1, 2, 3, 4, 5, 6], [20, 21, 22]);
    const proposer = new Proposer({ request: scope.trie }, 16);
    expect(drafts(proposer, [9, 3])).toContain('4,5,6');
    expect(drafts(proposer, [5, 6])).toContain('20,21,22');
    scope.pushOutput([30, 31, 32, 33, 34, 35, 36]);
    expect(drafts(proposer, [30])).toContain('31,32,33');
    // At once, as far as the output goes (no lag of a full n-gram).
    expect(drafts(proposer, [34])).toEqual(['35', '35,36']);
    scope.pushOutput([37, 0, 38]); // EOS: the stream ends; nothing after it is stored
    expect(drafts(proposer, [34])).toEqual(['35', '35,36', '35,36,37']);
    scope.finish([], null, null);
    expect(drafts(proposer, [34])).toEqual(['35', '35,36', '35,36,37']);
    expect(drafts(proposer, [37])).toEqual([]);
  });

  it('a request trie filled in slices equals one built at once; its choices share it; it keeps to its node bound', () => {
    const prompt = Array.from({ length: 300 }, (_, i) => 1 + ((i * 7) % 50));
    const prediction = Array.from({ length: 200 }, (_, i) => 60 + ((i * 3) % 40));
    const hints = [[90, 91, 92, 0, 93], [94, 95]];
    const whole = new RequestScope(settings, prompt, prediction, hints);
    const sliced = new RequestTrie(settings, prompt, prediction, hints);
    let slices = 0;
    while (!sliced.fill(7)) slices++;
    expect(slices).toBeGreaterThan(50);
    expect(Buffer.from(sliced.trie.snapshot())).toEqual(Buffer.from(whole.trie.snapshot()));
    // The n choices of one request: one trie, each choice streaming its own output into it.
    const [a, b] = [0, 1].map(() => new RequestScope(settings, prompt, prediction, hints, sliced));
    expect(a.trie).toBe(b.trie);
    a.pushOutput([70, 71, 72, 73]);
    b.pushOutput([80, 81, 82, 83]);
    expect(drafts(new Proposer({ request: b.trie }, 16), [70])).toContain('71,72,73');
    // Bounded like the other tries, however much a request brings.
    const bounded = new RequestTrie({ gramLength: 65, maxNodes: 2000 }, Array.from({ length: 1000 }, (_, i) => i % 700), prediction);
    bounded.fill(Infinity);
    expect(bounded.trie.nodeCount).toBeLessThanOrEqual(2000);
    // Closed (its jobs ended): nothing more is filled.
    const closed = new RequestTrie(settings, prompt);
    closed.close();
    expect(closed.fill(1000)).toBe(true);
    expect(closed.trie.nodeCount).toBe(0);
  });

  it('on finish teaches the session the prompt and answer, and the global trie the answer only', () => {
    const sessions = new SessionStore({ ...settings, maxNodes: 10_000 }, { maxSessions: 10, ttlMs: 60_000 });
    const globals = new GlobalTries({ ...settings, maxNodes: 10_000 });
    const session = sessions.acquire('t', 's1')!;
    const global = globals.get('t');
    const scope = new RequestScope(settings, [1, 2, 3, 4, 5], undefined);
    scope.finish([40, 41, 42], session, global);
    expect(drafts(new Proposer({ request: session }, 16), [1, 2])).toContain('3,4,5');
    expect(drafts(new Proposer({ request: session }, 16), [4, 5])).toContain('40,41,42');
    expect(drafts(new Proposer({ request: global }, 16), [4, 5])).toContain('40,41,42');
    expect(drafts(new Proposer({ request: global }, 16), [1, 2])).toEqual([]);
  });
});

describe('SessionStore', () => {
  it('isolates sessions and tenants', () => {
    const sessions = new SessionStore({ ...settings, maxNodes: 10_000 }, { maxSessions: 10, ttlMs: 60_000 });
    sessions.acquire('t', 'a')!.insert([1, 2, 3, 4]);
    const empty = new Proposer({ request: sessions.acquire('t', 'b')! }, 16);
    expect(drafts(empty, [1, 2])).toEqual([]);
    expect(drafts(new Proposer({ request: sessions.acquire('u', 'a')! }, 16), [1, 2])).toEqual([]);
    expect(drafts(new Proposer({ request: sessions.acquire('t', 'a')! }, 16), [1, 2])).toEqual(['3', '3,4']);
    expect(sessions.size).toBe(3);
    expect(sessions.nodeCount()).toBe(9); // keys 1, 2, 3 with 3, 2, 1 nodes below
    expect(sessions.delete('t', 'a')).toBe(true);
    expect(sessions.peek('t', 'a')).toBeUndefined();
  });

  it('forgets the least recently used beyond max, and idle ones after the TTL', async () => {
    const sessions = new SessionStore({ ...settings, maxNodes: 10_000 }, { maxSessions: 2, ttlMs: 40 });
    sessions.acquire('t', 'a');
    sessions.acquire('t', 'b');
    sessions.acquire('t', 'a');
    sessions.acquire('t', 'c');
    expect(sessions.peek('t', 'b')).toBeUndefined();
    expect(sessions.peek('t', 'a')).toBeDefined();
    await sleep(80);
    expect(sessions.peek('t', 'a')).toBeUndefined();
    expect(new SessionStore({ ...settings, maxNodes: 100 }, { maxSessions: 0, ttlMs: 1 }).acquire('t', 'a')).toBeNull();
  });
});

describe('GlobalTries', () => {
  it('isolates tenants and round-trips through one snapshot', () => {
    const globals = new GlobalTries({ ...settings, maxNodes: 10_000 });
    globals.get('acme').insert([1, 2, 3, 4, 5]);
    globals.get('ünïcode').insert([7, 8, 9]);
    expect(drafts(new Proposer({ request: globals.get('other') }, 16), [1, 2])).toEqual([]);
    const restored = new GlobalTries({ ...settings, maxNodes: 10_000 });
    restored.restore(globals.snapshot());
    expect(restored.tenants().sort()).toEqual(['acme', 'other', 'ünïcode']);
    expect(drafts(new Proposer({ request: restored.get('acme') }, 16), [1, 2])).toEqual(['3', '3,4', '3,4,5']);
    expect(drafts(new Proposer({ request: restored.get('ünïcode') }, 16), [7])).toEqual(['8', '8,9']);
    expect(restored.nodeCount()).toBe(globals.nodeCount());
    expect(() => restored.restore(globals.snapshot().subarray(0, 20))).toThrow(TrieSnapshotError);
    expect(() => restored.restore(globals.snapshot(), 8)).toThrow(/outside the vocabulary/);
  });

  it('rebuilds a snapshot taken with another n-gram length to its own', () => {
    const globals = new GlobalTries({ ...settings, maxNodes: 10_000 });
    globals.get('acme').insert([1, 2, 3, 4, 5, 6, 7]);
    const shorter = new GlobalTries({ gramLength: 2, maxNodes: 10_000 });
    shorter.restore(globals.snapshot());
    expect(shorter.get('acme').gramLength).toBe(2);
    expect(drafts(new Proposer({ request: shorter.get('acme') }, 16), [1, 2])).toEqual(['3', '3,4']);
  });

  it('holds at most maxTenants, evicting the least recently used', () => {
    const globals = new GlobalTries({ ...settings, maxNodes: 10_000, maxTenants: 3 });
    for (const t of ['a', 'b', 'c']) globals.get(t).insert([1, 2, 3]);
    globals.get('a');
    globals.copyIndex('d').append([1, 2, 3]);
    expect(globals.tenants().sort()).toEqual(['a', 'c', 'd']);
    expect(globals.evicted).toBe(1);
  });
});

describe('SessionStore per-tenant bound', () => {
  it("a tenant's new sessions evict its own oldest, not another tenant's", () => {
    const sessions = new SessionStore({ ...settings, maxNodes: 10_000 }, { maxSessions: 100, ttlMs: 60_000, maxPerTenant: 3 });
    sessions.acquire('other', 'keep')!.insert([1, 2, 3]);
    for (let i = 0; i < 50; i++) sessions.acquire('noisy', `s${i}`);
    expect(sessions.size).toBe(4);
    expect(sessions.peek('other', 'keep')).toBeDefined();
    expect(sessions.peek('noisy', 's49')).toBeDefined();
    expect(sessions.peek('noisy', 's46')).toBeUndefined();
  });
});
