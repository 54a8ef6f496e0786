import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer } from '../helpers/spawned-server.js';

/**
 * One request must not exhaust the machine: a hostile body (megabytes of prediction or of enum strings, n = 4, the
 * longest branches) is refused or served within bounds by the real process, whose memory is measured, and a short
 * request sent meanwhile is answered promptly.
 */
const dir = mkdtempSync(join(tmpdir(), 'lookahead-bounded-'));
const children: ChildProcess[] = [];
const CONTEXT = 2048;
let url: string;
let pid: number;
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

beforeAll(async () => {
  const args = ['--import', 'tsx', 'src/main.ts', '--model', 'builtin:synthetic', '--port', '0', '--threads', '1', '--context-length', String(CONTEXT)];
  const server = spawnServer(process.execPath, args, { ...process.env, LOOKAHEAD_CACHE_DIR: join(dir, 'cache'), LOOKAHEAD_HOST: '127.0.0.1' }, children);
  url = await server.url;
  pid = server.child.pid!;
  expect((await chat({ max_tokens: 4 })).status).toBe(200);
});

function rssBytes(): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

function chat(extra: object): Promise<Response> {
  const body = { model: 'lookahead-default-synthetic', messages: [{ role: 'user', content: 'hi' }], temperature: 0, ...extra };
  return fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** About `chars` characters of words. */
function words(chars: number): string {
  const out: string[] = [];
  for (let n = 0; n < chars; ) {
    const w = `word${out.length % 997}`;
    out.push(w);
    n += w.length + 1;
  }
  return out.join(' ').slice(0, chars);
}

/** Sends `hostile`, and a short request while it is handled; the short one must not wait behind it. */
async function alongside(hostile: object): Promise<{ res: Response; shortMs: number }> {
  const pending = chat({ max_tokens: 1, n: 4, lookahead: { branch_length: 64 }, ...hostile });
  await new Promise((r) => setTimeout(r, 100));
  const started = performance.now();
  expect((await chat({ max_tokens: 4 })).status).toBe(200);
  return { res: await pending, shortMs: performance.now() - started };
}

describe.runIf(process.platform === 'linux')('bounded work per request', () => {
  it('megabytes of prediction or of enum strings: 400 naming the parameter, no memory held, a short request answered meanwhile', async () => {
    const before = rssBytes();
    const big = words(2_000_000);
    const prediction = await alongside({ prediction: { type: 'content', content: big } });
    expect(prediction.res.status).toBe(400);
    expect(((await prediction.res.json()) as { error: { param: string } }).error.param).toBe('prediction');
    expect(prediction.shortMs).toBeLessThan(5000);
    const schema = { type: 'object', properties: { a: { type: 'string', enum: [big] } }, required: ['a'] };
    const constrained = await alongside({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
    expect(constrained.res.status).toBe(400);
    expect(((await constrained.res.json()) as { error: { param: string } }).error.param).toBe('response_format.json_schema.schema');
    expect(constrained.shortMs).toBeLessThan(5000);
    // Just within the context: served, its four choices drafting from one bounded trie.
    const within = await alongside({ prediction: { type: 'content', content: words(CONTEXT - 100) } });
    expect(within.res.status).toBe(200);
    expect(within.shortMs).toBeLessThan(5000);
    expect(rssBytes() - before).toBeLessThan(300 * 2 ** 20);
  });
});
