import type { SyncKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { withTimeout } from './timeout.js';

/** A lookup waits at most this long for the connection, and as long for the answer: a Redis away makes a continuation a 400 (unknown id), not a hang. */
const GET_TIMEOUT_MS = 1000;

/**
 * Writes one response's records (ARGV 5.. as key, value pairs) as a group and keeps the tenant under its byte bound:
 * groups past their age leave the count (their keys expired with them), then the oldest groups are deleted until
 * the bytes fit. A group is one member of the tenant's index: its size, then its keys, newline-separated.
 * KEYS: index, bytes counter. ARGV: now ms, ttl ms, byte bound, member, key, value, key, value, ...
 */
const PUT = `
local now, ttl, bound = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function drop(member)
  local size, first = 0, true
  for part in string.gmatch(member, '[^\\n]+') do
    if first then size = tonumber(part); first = false else redis.call('DEL', part) end
  end
  redis.call('ZREM', KEYS[1], member)
  return redis.call('DECRBY', KEYS[2], size)
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl)) do drop(member) end
for i = 5, #ARGV, 2 do redis.call('SET', ARGV[i], ARGV[i + 1], 'PX', ttl) end
redis.call('ZADD', KEYS[1], now, ARGV[4])
local total = redis.call('INCRBY', KEYS[2], tonumber(string.match(ARGV[4], '^%d+')))
while total > bound do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not oldest then break end
  total = drop(oldest)
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
`;

/**
 * Stored responses in Redis, so any replica continues a conversation another one answered, and a restarted one
 * continues its own. Bounded per tenant by the same bytes and age as each replica's local store.
 */
export class SharedResponseRecords {
  constructor(
    private readonly link: RedisLink,
    private readonly keys: SyncKeys,
    private readonly limits: { bytesPerTenant: number; ttlMs: number },
  ) {}

  put(tenant: string, records: readonly { key: string; json: string }[]): void {
    if (!this.link.connected || records.length === 0) return;
    const keyed = records.map((r) => ({ key: this.keys.record(tenant, r.key), json: r.json }));
    const size = keyed.reduce((n, r) => n + Buffer.byteLength(r.json) + Buffer.byteLength(r.key), 0);
    const member = [String(size), ...keyed.map((r) => r.key)].join('\n');
    const pairs = keyed.flatMap((r) => [r.key, r.json]);
    void this.link.cmd
      .eval(PUT, 2, this.keys.recordIndex(tenant), this.keys.recordBytes(tenant), Date.now(), this.limits.ttlMs, this.limits.bytesPerTenant, member, ...pairs)
      .catch(() => {
        // Redis went away: the response stays continuable on this replica only.
      });
  }

  async get(tenant: string, keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    // A replica that just started may not be connected yet: a continuation waits for it rather than fail.
    await this.link.waitUp(GET_TIMEOUT_MS);
    if (!this.link.connected) return keys.map(() => null);
    try {
      return await withTimeout(this.link.cmd.mget(...keys.map((k) => this.keys.record(tenant, k))), GET_TIMEOUT_MS);
    } catch {
      return keys.map(() => null);
    }
  }
}
