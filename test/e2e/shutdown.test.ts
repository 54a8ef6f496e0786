import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer, type SpawnedServer } from '../helpers/spawned-server.js';

/** The real process, as Docker runs it: SIGTERM while a stream is running. */
const dir = mkdtempSync(join(tmpdir(), 'lookahead-shutdown-'));
const snapshot = join(dir, 'global-trie.bin');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function start(contextLength = 512): SpawnedServer {
  return spawnServer(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', '--model', 'builtin:synthetic', '--port', '0', '--threads', '1', '--context-length', String(contextLength), '--max-tokens', String(contextLength - 112), '--trie-snapshot', snapshot, '--shutdown-grace-ms', '20000'],
    { ...process.env, LOOKAHEAD_CACHE_DIR: join(dir, 'cache'), LOOKAHEAD_HOST: '127.0.0.1' },
    children,
  );
}

async function chat(url: string, body: object): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'lookahead-default-synthetic', messages: [{ role: 'user', content: 'Tell a long story.' }], temperature: 0, ...body }),
  });
}

describe('SIGTERM', () => {
  it('lets a running stream finish, refuses new work with 503, exits 0, snapshots the tries; the next start restores them', async () => {
    const first = start();
    const url = await first.url;
    // Something in the global trie worth restoring.
    expect((await chat(url, { max_tokens: 40 })).status).toBe(200);

    const res = await chat(url, { max_tokens: 400, stream: true, lookahead: { enabled: false } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    first.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const refused = await chat(url, { max_tokens: 5 });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('service_unavailable');
    expect((await fetch(`${url}/ready`)).status).toBe(503);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(text).toMatch(/"finish_reason":"(length|stop)"/);
    expect(await first.exit).toBe(0);
    expect(existsSync(snapshot)).toBe(true);
    expect(statSync(snapshot).size).toBeGreaterThan(0);

    const second = start();
    const url2 = await second.url;
    const restored = /global tries restored from [^(]+\((\d+) nodes\)/.exec(second.stderr());
    expect(restored).not.toBeNull();
    const nodes = Number(restored![1]);
    expect(nodes).toBeGreaterThan(0);
    // Feeding a one-letter document makes the engine report its trie sizes: the restored nodes are there.
    await fetch(`${url2}/v1/lookahead/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ documents: ['a'] }) });
    let global = 0;
    for (let i = 0; i < 50 && global < nodes; i++) {
      global = ((await (await fetch(`${url2}/v1/lookahead/stats`)).json()) as { trie_nodes: { global: number } }).trie_nodes.global;
      if (global < nodes) await new Promise((r) => setTimeout(r, 50));
    }
    expect(global).toBeGreaterThanOrEqual(nodes);
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
  });

  it('a second signal a second or more after the first exits at once', async () => {
    const p = start(2048);
    const url = await p.url;
    // Eight unread streams of 1900 tokens: loopback sockets buffer megabytes, so only work that takes many seconds
    // to decode keeps the drain waiting when the second signal comes (400-token streams finished in 1.1 s on CI).
    const res = await chat(url, { max_tokens: 1900, n: 8, ignore_eos: true, stream: true, lookahead: { enabled: false } });
    const reader = res.body!.getReader();
    await reader.read();
    p.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1200));
    p.child.kill('SIGTERM');
    expect(await p.exit, p.stderr()).toBe(1);
    await reader.cancel().catch(() => {});
  });
});
