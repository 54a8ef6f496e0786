import { describe, expect, it } from 'vitest';
import { MIN_SHARED, PrefixCache } from '../../src/engine/prefix-cache.js';
import type { Sequence } from '../../src/model/types.js';

/**
 * A sequence that records forks and disposal (the rows themselves are the runtime's business: batch-forward tests).
 * It holds a byte per row of its region, which is `capacity` rows (its length unless given).
 */
class FakeSeq {
  disposed = false;
  settled = false;
  forks: number[] = [];
  constructor(
    public length: number,
    readonly canFork = true,
    readonly capacity = length,
  ) {}
  residency() {
    return { locations: [], hostBytes: this.disposed ? 0 : this.capacity };
  }
  get fork(): ((rows: number) => Sequence) | undefined {
    if (!this.canFork) return undefined;
    return (rows: number) => {
      this.forks.push(rows);
      return new FakeSeq(rows) as unknown as Sequence;
    };
  }
  settle(): void {
    this.settled = true;
  }
  dispose(): void {
    this.disposed = true;
  }
}

const seq = (length: number, canFork = true) => new FakeSeq(length, canFork);
const asSeq = (s: FakeSeq) => s as unknown as Sequence;
const range = (from: number, n: number) => Int32Array.from({ length: n }, (_, i) => from + i);

describe('PrefixCache', () => {
  it('forks the entry sharing the longest start, leaving the prompt at least its last token to prefill', () => {
    const cache = new PrefixCache(1000);
    const a = seq(40);
    const b = seq(60);
    cache.put('t', range(0, 40), asSeq(a));
    cache.put('t', Int32Array.from([...range(0, 30), ...range(500, 30)]), asSeq(b));
    // Kept sequences are settled: they hold no logits buffers while they wait.
    expect([a.settled, b.settled]).toEqual([true, true]);
    const hit = cache.take('t', [...range(0, 35), 9, 9])!;
    expect(hit.rows).toBe(35);
    expect(a.forks).toEqual([35]);
    expect(b.forks).toEqual([]);
    // The whole prompt is cached: all but its last token come from the cache.
    expect(cache.take('t', range(0, 40))!.rows).toBe(39);
  });

  it('shares nothing below MIN_SHARED tokens, nor across tenants', () => {
    const cache = new PrefixCache(1000);
    cache.put('t', range(0, 40), asSeq(seq(40)));
    expect(cache.take('t', [...range(0, MIN_SHARED - 1), 999, 999])).toBeNull();
    expect(cache.take('t', [...range(0, MIN_SHARED), 999])!.rows).toBe(MIN_SHARED);
    expect(cache.take('u', range(0, 40))).toBeNull();
  });

  it('evicts the least recently used entries past its bytes, disposing them', () => {
    const cache = new PrefixCache(100);
    const [a, b, c] = [seq(40), seq(40), seq(40)];
    cache.put('t', range(0, 40), asSeq(a));
    cache.put('t', range(1000, 40), asSeq(b));
    // Using a makes b the least recently used.
    expect(cache.take('t', range(0, 41))).not.toBeNull();
    cache.put('t', range(2000, 40), asSeq(c));
    expect([a.disposed, b.disposed, c.disposed]).toEqual([false, true, false]);
    expect(cache.bytes).toBe(80);
    expect(cache.take('t', range(1000, 41))).toBeNull();
  });

  it('drops an entry whose tokens all start a new one (the earlier turn of a chat)', () => {
    const cache = new PrefixCache(1000);
    const turn1 = seq(30);
    const other = seq(30);
    cache.put('t', range(0, 30), asSeq(turn1));
    cache.put('t', range(5000, 30), asSeq(other));
    cache.put('t', range(0, 50), asSeq(seq(50)));
    expect(turn1.disposed).toBe(true);
    expect(other.disposed).toBe(false);
    expect(cache.bytes).toBe(80);
  });

  it('disposes at once what it cannot keep: no fork, too short, longer than the cache, rows and tokens apart', () => {
    const cache = new PrefixCache(100);
    const kept = [seq(40, false), seq(MIN_SHARED - 1), seq(101), seq(40)];
    cache.put('t', range(0, 40), asSeq(kept[0]));
    cache.put('t', range(0, MIN_SHARED - 1), asSeq(kept[1]));
    cache.put('t', range(0, 101), asSeq(kept[2]));
    cache.put('t', range(0, 39), asSeq(kept[3]));
    expect(kept.map((s) => s.disposed)).toEqual([true, true, true, true]);
    expect(cache.bytes).toBe(0);
  });

  it('counts the bytes each entry holds, its whole K/V region, not its rows: held bytes stay within the bound', () => {
    const max = 10 * 1024;
    const cache = new PrefixCache(max);
    const all: FakeSeq[] = [];
    // Short distinct chats, each in a region of 256 rows of 4 bytes: 1,500 of them are 1.5 MB.
    for (let i = 0; i < 1500; i++) {
      const s = new FakeSeq(20, true, 1024);
      all.push(s);
      cache.put('t', range(i * 100, 20), asSeq(s));
    }
    const held = all.reduce((n, s) => n + s.residency().hostBytes, 0);
    expect(held).toBeLessThanOrEqual(max);
    expect(held).toBe(cache.bytes);
    expect(all.filter((s) => !s.disposed)).toHaveLength(10);
  });

  it('clear disposes every entry', () => {
    const cache = new PrefixCache(1000);
    const s = [seq(20), seq(30)];
    cache.put('t', range(0, 20), asSeq(s[0]));
    cache.put('u', range(0, 30), asSeq(s[1]));
    cache.clear();
    expect(s.every((x) => x.disposed)).toBe(true);
    expect(cache.bytes).toBe(0);
  });
});
