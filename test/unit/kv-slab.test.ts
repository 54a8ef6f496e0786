import { describe, expect, it } from 'vitest';
import { KvSlab } from '../../src/model/runtime/kv-slab.js';

describe('KvSlab', () => {
  it('sizes regions by doubling from 256 rows, up to the context', () => {
    const slab = new KvSlab(2, 4, 1500);
    expect(slab.alloc(1).rows).toBe(256);
    expect(slab.alloc(257).rows).toBe(512);
    expect(slab.alloc(1100).rows).toBe(1500);
    const r = slab.alloc(300);
    expect(r.keys).toHaveLength(2);
    expect(r.values[1]).toHaveLength(512 * 4);
  });

  it('reuses a released region of the same size, and keeps only a few per size', () => {
    const slab = new KvSlab(1, 2, 4096);
    const a = slab.alloc(10);
    slab.release(a);
    expect(slab.alloc(200)).toBe(a);
    const many = Array.from({ length: 6 }, () => slab.alloc(10));
    for (const r of many) slab.release(r);
    const again = Array.from({ length: 6 }, () => slab.alloc(10));
    expect(again.filter((r) => many.includes(r))).toHaveLength(4);
  });

  it('moves the filled rows to a larger region, and copies rows within a region and across', () => {
    const slab = new KvSlab(2, 2, 4096);
    const a = slab.alloc(256);
    for (let l = 0; l < 2; l++) for (let i = 0; i < 512; i++) [a.keys[l][i], a.values[l][i]] = [l * 1000 + i, -(l * 1000 + i)];
    const b = slab.move(a, 300, 100);
    expect(b.rows).toBe(512);
    expect(Array.from(b.keys[1].subarray(0, 200))).toEqual(Array.from(a.keys[1].subarray(0, 200)));
    expect(b.values[0][199]).toBe(-199);
    expect(b.keys[0][200]).toBe(0);
    // Row 5 over row 2 (a draft's accepted node kept after its root), and rows 0..2 of b into rows 10..12 of c.
    slab.copyRows(b, 5, b, 2, 1);
    expect(Array.from(b.keys[1].subarray(4, 6))).toEqual([1010, 1011]);
    const c = slab.alloc(20);
    slab.copyRows(b, 0, c, 10, 3);
    expect(Array.from(c.values[1].subarray(20, 26))).toEqual(Array.from(b.values[1].subarray(0, 6)));
  });

  it('sizes a region for rows known ahead to a multiple of 256 rows, and moves into such a region', () => {
    const slab = new KvSlab(1, 2, 8000);
    expect(slab.alloc(4096 + 33 + 64, true).rows).toBe(4352);
    expect(slab.alloc(4096 + 33 + 64).rows).toBe(8000);
    expect(slab.alloc(7990, true).rows).toBe(8000);
    const a = slab.alloc(300);
    a.keys[0][7] = 7;
    const b = slab.move(a, 1100, 4, true);
    expect(b.rows).toBe(1280);
    expect(b.keys[0][7]).toBe(7);
  });

  it('keeps released regions up to a byte budget in all: a long prompt\'s region goes to the GC', () => {
    // Rows of 1 layer × (K + V) × 2 floats: 16 bytes, so 4096 rows are 64 KiB, past the budget of 48 KiB.
    const slab = new KvSlab(1, 2, 8192, 48 * 1024);
    const big = slab.alloc(4096);
    const small = slab.alloc(256);
    slab.release(small);
    slab.release(big);
    expect(slab.alloc(4096)).not.toBe(big);
    expect(slab.alloc(256)).toBe(small);
  });
});
