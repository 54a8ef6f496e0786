import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/**
 * Tenant A posts 4 MB of documents while tenant B streams. B's inter-token latency (gaps between the SSE events
 * that carry text, as B's client sees them) is measured right before A starts and then while A's documents are
 * being tokenized and inserted: its p99 must stay within ×2. Before ingestion was sliced, one 390 KB post held
 * every other tenant's decode for seconds.
 */
const KEYS = { a: 'sk-fair-a', b: 'sk-fair-b' };
const DOCUMENT_BYTES = 4 * 1024 * 1024;
/** Gaps per phase: enough that the p99 is not one outlier. */
const ROUNDS = 4;
/** Least time per window; a loaded window lasts until A's post is in. */
const WINDOW_MS = 2500;
let server: RealServer;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lookahead-fair-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, `auth:\n  apiKeys:\n    - { key: ${KEYS.a}, tenant: a }\n    - { key: ${KEYS.b}, tenant: b }\n`);
  server = await startRealServer([
    '--config', config, '--context-length', '1024', '--max-tokens', '1000', '--branch-length', '4',
    '--body-limit-bytes', String(16 * 1024 * 1024), '--max-document-bytes', String(6 * 1024 * 1024),
    '--document-bytes-per-minute', String(6 * 1024 * 1024),
  ]);
});
afterAll(async () => {
  await server?.close();
});

/** Distinct, text-like documents: words from a seeded generator, so the trie really grows. */
function documents(totalBytes: number, count: number, seedBase = 0): string[] {
  const words = ['harbor', 'lantern', 'signal', 'keeper', 'storm', 'north', 'granite', 'tide', 'beacon', 'salt', 'winter', 'ledger', 'compass', 'rope', 'gull', 'island'];
  let seed = 12345 + seedBase;
  const docs: string[] = [];
  for (let d = 0; d < count; d++) {
    const parts: string[] = [];
    let bytes = 0;
    while (bytes < totalBytes / count) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const w = `${words[seed % words.length]}${(seed >>> 8) % 97} `;
      parts.push(w);
      bytes += w.length;
    }
    docs.push(parts.join(''));
  }
  return docs;
}

/**
 * Streams B's requests back to back until `until()` says stop (checked between requests, so requests are short) and
 * at least `minMs` have passed; collects the gaps between text events in ms.
 */
async function measureB(gaps: number[], minMs: number, until: () => boolean = () => true): Promise<number> {
  let tokens = 0;
  const start = performance.now();
  while (performance.now() - start < minMs || !until()) {
    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.b}` },
      body: JSON.stringify({
        model: server.modelId, messages: [{ role: 'user', content: 'Write a long story.' }], max_tokens: 200, temperature: 0, stream: true,
        stream_options: { include_usage: true }, lookahead: { enabled: false },
      }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let last = -1;
    let buffered = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const now = performance.now();
      buffered += decoder.decode(value, { stream: true });
      const events = buffered.split('\n\n');
      buffered = events.pop()!;
      for (const e of events) {
        if (!e.includes('"content":"') || e.includes('"content":""')) {
          const usage = /"completion_tokens":(\d+)/.exec(e);
          if (usage) tokens += Number(usage[1]);
          continue;
        }
        if (last >= 0) gaps.push(now - last);
        last = now;
      }
    }
  }
  return tokens;
}

function post(key: string, docs: string[]): Promise<Response> {
  return fetch(`${server.baseURL}/lookahead/documents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ documents: docs }),
  });
}

function p99(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))];
}

describe('fair work between tenants', () => {
  it("tenant A's 4 MB of documents keep tenant B's p99 inter-token latency within ×2 of its baseline", async () => {
    // Over the size cap: refused outright, nothing queued.
    expect((await post(KEYS.b, documents(6.5 * 1024 * 1024, 1))).status).toBe(413);

    await measureB([], 0); // warm-up: first-request costs stay out of the baseline

    // Rounds of (B alone, then B while A posts ROUND_BYTES): the machine is shared and its load drifts, so the two
    // conditions alternate and each pools its rounds.
    const alone: number[] = [];
    const loaded: number[] = [];
    let tokensAlone = 0;
    let tokensLoaded = 0;
    let msAlone = 0;
    let msLoaded = 0;
    for (let round = 0; round < ROUNDS; round++) {
      let t = performance.now();
      tokensAlone += await measureB(alone, WINDOW_MS);
      msAlone += performance.now() - t;
      let answered: Response | null = null;
      const posting = post(KEYS.a, documents(DOCUMENT_BYTES / ROUNDS, 2, round)).then((r) => (answered = r));
      t = performance.now();
      tokensLoaded += await measureB(loaded, WINDOW_MS, () => answered !== null);
      msLoaded += performance.now() - t;
      await posting;
      expect(answered!.status).toBe(200);
    }
    const rate = (tokens: number, ms: number) => ((tokens * 1000) / ms).toFixed(0);
    console.log(
      `fair work: B p99 inter-token gap ${p99(alone).toFixed(1)} ms alone (${alone.length} gaps, ${rate(tokensAlone, msAlone)} tok/s), ` +
        `${p99(loaded).toFixed(1)} ms while A posts (${loaded.length} gaps, ${rate(tokensLoaded, msLoaded)} tok/s); ` +
        `A posted ${DOCUMENT_BYTES} bytes in ${ROUNDS} posts; global trie ${server.engine.stats().trieNodes.global} nodes`,
    );
    expect(loaded.length).toBeGreaterThanOrEqual(200);
    expect(p99(loaded)).toBeLessThanOrEqual(2 * p99(alone));
  }, 300_000);

  it('past its byte budget per minute a tenant gets 429 with Retry-After', async () => {
    // B has 6 MB per minute: of two 5 MB posts sent together, whichever comes second is refused at once (it would
    // need 40 s of refill; the other one is answered only when ingested, long after).
    const both = [post(KEYS.b, documents(5 * 1024 * 1024, 1, 99)), post(KEYS.b, documents(5 * 1024 * 1024, 1, 98))];
    for (const p of both) void p.catch(() => {});
    const res = await Promise.race(both);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('documents_rate_limit');
  });
});
