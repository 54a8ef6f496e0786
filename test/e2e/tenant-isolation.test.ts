import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARED_DATA } from '../helpers/paths.js';
import { startRealServer, type RealServer } from '../helpers/real-server.js';

/**
 * One tenant's documents and answers must never become another's drafts: acceptance would tell the other tenant
 * whether a text had been seen. A real trained model, so that a document holding the answer is drafted from.
 */
const MODEL_DIR = join(SHARED_DATA, 'models/chat-llama-5m');
const present = existsSync(`${MODEL_DIR}/config.json`);
if (!present) console.warn(`SKIPPED test/e2e/tenant-isolation.test.ts: ${MODEL_DIR} is absent`);

const KEYS = { a: 'sk-tenant-a', b: 'sk-tenant-b', c: 'sk-tenant-c' };
const QUESTION = 'Tell me a story about a little dog.';

interface Answer {
  text: string;
  completion: number;
  accepted: number;
}

describe.skipIf(!present)('tenant isolation', () => {
  let server: RealServer;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lookahead-tenants-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `auth:\n  apiKeys:\n${Object.entries(KEYS).map(([t, k]) => `    - { key: ${k}, tenant: ${t} }`).join('\n')}\n`);
    server = await startRealServer(['--model', MODEL_DIR, '--model-id', 'chat-llama-5m', '--config', config]);
  });
  afterAll(async () => {
    await server?.close();
  });

  async function ask(key: string): Promise<Answer> {
    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'chat-llama-5m', messages: [{ role: 'user', content: QUESTION }], max_tokens: 64, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[]; usage: { completion_tokens: number }; lookahead: { accepted_tokens: number } };
    return { text: body.choices[0].message.content, completion: body.usage.completion_tokens, accepted: body.lookahead.accepted_tokens };
  }

  it("drafts from tenant A's document for A only; B asking the same gets nothing from it", async () => {
    // C, with no data, answers first: what any tenant drafts from the request alone.
    const baseline = await ask(KEYS.c);
    expect(baseline.completion).toBeGreaterThan(16);

    const docs = await fetch(`${server.baseURL}/lookahead/documents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.a}` },
      body: JSON.stringify({ documents: [baseline.text] }),
    });
    expect(((await docs.json()) as { tenant: string }).tenant).toBe('a');

    const a = await ask(KEYS.a);
    const b = await ask(KEYS.b);
    console.log(`tenant isolation: accepted draft tokens baseline ${baseline.accepted}/${baseline.completion}, A ${a.accepted}/${a.completion}, B ${b.accepted}/${b.completion}`);
    // Lossless either way: the same greedy answer for everyone.
    expect(a.text).toBe(baseline.text);
    expect(b.text).toBe(baseline.text);
    // A's document holds the answer: most of it is accepted from drafts.
    expect(a.accepted).toBeGreaterThan(a.completion / 2);
    // B sees nothing of A's document (nor of C's answer): no more than what drafting from the request gives.
    expect(b.accepted).toBeLessThanOrEqual(baseline.accepted + 2);
    expect(b.accepted).toBeLessThan(a.accepted / 2);
  });
});
