import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_SERVER_PRESENT, startRedis, type RedisProcess } from '../../bench/redis-process.js';
import { createLogger } from '../../src/observability/logger.js';
import { SyncKeys } from '../../src/sync/keys.js';
import { RedisLink } from '../../src/sync/link.js';
import { SharedResponseRecords } from '../../src/sync/responses.js';

if (!REDIS_SERVER_PRESENT) console.warn('SKIPPED test/integration/shared-responses.test.ts: redis-server is not installed (.ci/run installs it)');

/** Stored responses in a real redis-server: per tenant, bounded by bytes and age, kept and dropped by response. */
describe.skipIf(!REDIS_SERVER_PRESENT)('stored responses in Redis', () => {
  let redis: RedisProcess;
  let link: RedisLink;
  const keys = new SyncKeys('resp-test');

  beforeAll(async () => {
    redis = await startRedis();
    link = new RedisLink(redis.url, createLogger('silent'), () => {});
    while (!link.connected) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(async () => {
    await link?.close();
    await redis?.stop();
  });

  const record = (key: string, bytes: number) => ({ key, json: JSON.stringify({ pad: 'x'.repeat(bytes) }) });

  it("a tenant past its byte bound loses its own oldest responses, whole, never another tenant's", async () => {
    const shared = new SharedResponseRecords(link, keys, { bytesPerTenant: 50_000, ttlMs: 60_000 });
    shared.put('a', [record('resp:a1', 1000), record('item:a1', 100)]);
    for (let i = 0; i < 40; i++) shared.put('b', [record(`resp:b${i}`, 4000), record(`item:b${i}`, 100)]);
    // One connection answers in order: this read comes after every write above.
    expect(await shared.get('a', ['resp:a1', 'item:a1'])).toEqual([expect.stringContaining('pad'), expect.stringContaining('pad')]);
    const b = await shared.get('b', ['resp:b0', 'item:b0', 'resp:b39', 'item:b39']);
    expect(b).toEqual([null, null, expect.stringContaining('pad'), expect.stringContaining('pad')]);
    const held = Number(await redis.client.get(keys.recordBytes('b')));
    expect(held).toBeLessThanOrEqual(50_000);
    expect(held).toBeGreaterThan(40_000);
    // What the counter says is what is there: the groups still indexed are those whose keys exist.
    const members = await redis.client.zrange(keys.recordIndex('b'), 0, -1);
    const sizes = members.map((m) => Number(m.split('\n')[0]));
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(held);
    expect(await redis.client.exists(...members.flatMap((m) => m.split('\n').slice(1)))).toBe(members.length * 2);
  });

  it('records expire with their age, and leave the byte count when they do', async () => {
    const shared = new SharedResponseRecords(link, keys, { bytesPerTenant: 50_000, ttlMs: 200 });
    shared.put('c', [record('resp:c1', 1000)]);
    expect((await shared.get('c', ['resp:c1']))[0]).not.toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    expect(await shared.get('c', ['resp:c1'])).toEqual([null]);
    shared.put('c', [record('resp:c2', 10)]);
    await shared.get('c', ['resp:c2']);
    expect(await redis.client.zcard(keys.recordIndex('c'))).toBe(1);
  });
});
