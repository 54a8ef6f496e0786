import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry, EntryError, type Entry } from '../../src/sync/entries.js';
import { SyncKeys } from '../../src/sync/keys.js';
import { compareStreamIds } from '../../src/sync/stream-ids.js';

const context = { model: 'tag-1', vocabSize: 100 };
/** What XREAD returns for the fields XADD was given: flat buffers. */
const asRead = (fields: (string | Buffer)[]) => fields.map((f) => (typeof f === 'string' ? Buffer.from(f) : f));

describe('stream entries', () => {
  it('round-trips documents, corpus documents and answers', () => {
    const entries: Entry[] = [
      { kind: 'doc', text: 'héllo 字', origin: 'r1', at: 123 },
      { kind: 'corpus', text: 'corpus text', hash: 'ab'.repeat(16), origin: 'r1', at: 124 },
      { kind: 'answer', prompt: [1, 2, 3], answer: [4, 5, 99, 0], origin: 'r2', at: 125 },
    ];
    for (const e of entries) expect(decodeEntry(asRead(encodeEntry(e, 'tag-1')), context)).toEqual(e);
  });

  it('refuses what another model, another format or a broken writer produced', () => {
    const answer: Entry = { kind: 'answer', prompt: [1], answer: [2], origin: 'r', at: 1 };
    const cases: [(string | Buffer)[], RegExp][] = [
      [encodeEntry(answer, 'other-tag'), /another model/],
      [['v', '2', 'k', 'doc'], /format version/],
      [['x', 'y'], /'v' is missing/],
      [['v', '1', 'm', 'tag-1'], /'o' is missing/],
      [['v', '1', 'm', 'tag-1', 'o', 'r', 'k', 'picture', 't', '1'], /unknown kind/],
      [['v', '1', 'm', 'tag-1', 'o', 'r', 'k', 'answer', 't', '1', 'p', Buffer.alloc(3), 'a', Buffer.alloc(4)], /int32/],
      [['v', '1', 'm', 'tag-1', 'o', 'r', 'k', 'answer', 't', '1', 'p', Buffer.alloc(4), 'a', Buffer.from([100, 0, 0, 0])], /outside the vocabulary/],
      [['v', '1', 'm', 'tag-1', 'o', 'r', 'k', 'doc', 't', '1', 'text', Buffer.from([0xff, 0xfe])], /not UTF-8/],
      [['v', '1', 'm', 'tag-1', 'o', 'r', 'k', 'corpus', 't', '1', 'text', 'x', 'h', 'nothex'], /hash/],
      [['v', '1', 'm'], /odd number/],
    ];
    for (const [fields, reason] of cases) {
      expect(() => decodeEntry(asRead(fields), context)).toThrow(EntryError);
      expect(() => decodeEntry(asRead(fields), context)).toThrow(reason);
    }
  });
});

describe('sync keys', () => {
  it('keeps tenants apart whatever their names hold', () => {
    const keys = new SyncKeys('lookahead');
    expect(keys.stream('a')).toBe('lookahead:t:a:stream');
    expect(keys.stream('a:stream')).not.toBe(keys.stream('a'));
    expect(keys.session('a', 'x:session:y')).toBe('lookahead:t:a:session:x%3Asession%3Ay');
    for (const tenant of ['a', 'a:t:b', 'ü 字', '%41']) expect(keys.tenantOfStream(keys.stream(tenant))).toBe(tenant);
    expect(keys.tenantOfStream('other:t:a:stream')).toBeNull();
  });

  it('orders stream ids numerically', () => {
    expect(compareStreamIds('9-0', '10-0')).toBe(-1);
    expect(compareStreamIds('10-2', '10-10')).toBe(-1);
    expect(compareStreamIds('10-2', '10-2')).toBe(0);
    expect(compareStreamIds('11-0', '10-99')).toBe(1);
  });
});
