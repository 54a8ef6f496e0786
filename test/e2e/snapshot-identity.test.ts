import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer } from '../helpers/spawned-server.js';

/**
 * Trie snapshots carry the identity of the model whose token ids they hold. The real process, started on snapshots
 * it must not load as they are: one of another model, one with an id outside the vocabulary, one from another
 * branch length, and a snapshot path it cannot write. It always starts, says why in its log, serves the same
 * answers, never overwrites a foreign file, and exits on SIGTERM within its bound.
 */
const dir = mkdtempSync(join(tmpdir(), 'lookahead-snapshot-id-'));
const cache = join(dir, 'cache');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  url: string;
  log: () => string;
  stop: () => Promise<{ code: number | null; ms: number }>;
}

async function start(snapshot: string, extra: string[] = []): Promise<Started> {
  const { child, url: serving, exit, stderr } = spawnServer(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', '--model', 'builtin:synthetic', '--port', '0', '--threads', '1', '--context-length', '256', '--trie-snapshot', snapshot, '--shutdown-grace-ms', '2000', ...extra],
    { ...process.env, LOOKAHEAD_CACHE_DIR: cache, LOOKAHEAD_HOST: '127.0.0.1' },
    children,
  );
  const url = await serving;
  return {
    url,
    log: stderr,
    stop: async () => {
      const t = performance.now();
      child.kill('SIGTERM');
      const code = await exit;
      return { code, ms: performance.now() - t };
    },
  };
}

/**
 * Plain decoding's answer (the same computation whatever the tries hold, so it compares exactly across runs), after
 * checking that drafting from the restored tries works too (a foreign id in a trie used to fail requests with 500).
 */
async function answer(url: string): Promise<string> {
  const ask = (lookahead: boolean) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'lookahead-default-synthetic',
        messages: [{ role: 'user', content: 'Tell a story.' }],
        max_tokens: 24,
        temperature: 0,
        logprobs: true,
        lookahead: { enabled: lookahead },
      }),
    });
  expect((await ask(true)).status).toBe(200);
  const res = await ask(false);
  expect(res.status).toBe(200);
  // The tokens' bytes, not the text: the synthetic model's noise is mostly invalid UTF-8, whose text depends on how
  // the stream happened to be cut into batches.
  const body = (await res.json()) as { choices: { logprobs: { content: { bytes: number[] }[] } }[] };
  return JSON.stringify(body.choices[0].logprobs.content.map((t) => t.bytes));
}

const asideFiles = (name: string) => readdirSync(dir).filter((f) => f.startsWith(`${name}.rejected-`));

describe('trie snapshot identity', () => {
  const own = join(dir, 'own.bin');
  let reference = '';

  it('writes a snapshot with an identity header, and reloads it after --branch-length changes (rebuilt, with a warning)', async () => {
    const first = await start(own);
    reference = await answer(first.url);
    expect((await first.stop()).code).toBe(0);
    const bytes = readFileSync(own);
    expect(bytes.readUInt32LE(0)).toBe(0x5350414c);
    expect(bytes.readUInt32LE(12)).toBe(13); // default branch length 12 + 1

    const second = await start(own, ['--branch-length', '4']);
    expect(second.log()).toMatch(/n-grams were 13 tokens long, now 5 \(branch length changed\); rebuilt to the new length/);
    expect(second.log()).toMatch(/global tries restored from/);
    expect(await answer(second.url)).toBe(reference);
    expect((await second.stop()).code).toBe(0);
    expect(readFileSync(own).readUInt32LE(12)).toBe(5);
  });

  it("sets aside a foreign model's snapshot (not loaded, not overwritten), removes stale temp files, and serves the same", async () => {
    const foreign = join(dir, 'foreign.bin');
    const bytes = Buffer.from(readFileSync(own));
    bytes[16] ^= 0xff; // another tokenizer fingerprint
    writeFileSync(foreign, bytes);
    writeFileSync(`${foreign}.tmp-999999999`, 'half a snapshot');
    const server = await start(foreign);
    expect(server.log()).toMatch(/global trie snapshot .*foreign\.bin not loaded: it was written for another model .*set aside as .*foreign\.bin\.rejected-/);
    expect(server.log()).toMatch(/removed stale snapshot temp file foreign\.bin\.tmp-999999999/);
    expect(existsSync(`${foreign}.tmp-999999999`)).toBe(false);
    expect(await answer(server.url)).toBe(reference);
    expect((await server.stop()).code).toBe(0);
    const aside = asideFiles('foreign.bin');
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0])).equals(bytes)).toBe(true);
    // What is at the path now is this model's own snapshot.
    expect(readFileSync(foreign).subarray(16, 48).equals(readFileSync(own).subarray(16, 48))).toBe(true);
  });

  it('sets aside a snapshot whose token ids fall outside the vocabulary', async () => {
    const bad = join(dir, 'bad-ids.bin');
    const bytes = Buffer.from(readFileSync(own));
    // The first tenant's trie starts after count, name length, name, trie length; its first node's token sits
    // after the 20-byte trie header.
    const nameLength = bytes.readUInt32LE(48 + 4);
    bytes.writeInt32LE(915, 48 + 8 + nameLength + 4 + 20);
    writeFileSync(bad, bytes);
    const server = await start(bad);
    expect(server.log()).toMatch(/bad-ids\.bin not loaded: trie snapshot holds token id 915, outside the vocabulary/);
    expect(await answer(server.url)).toBe(reference);
    expect((await server.stop()).code).toBe(0);
    expect(asideFiles('bad-ids.bin')).toHaveLength(1);
  });

  it('a snapshot path it cannot write does not stop the shutdown', async () => {
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'not a directory');
    const server = await start(join(blocker, 'snap.bin'));
    await answer(server.url);
    const { code, ms } = await server.stop();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(30_000);
    expect(server.log()).toMatch(/global trie snapshot .*snap\.bin could not be written/);
  });
});
