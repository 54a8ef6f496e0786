import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer } from '../helpers/spawned-server.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'lookahead-start-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) {
    // A server started in a group of its own goes with its group, even once npm is gone; others have no group.
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }
  rmSync(cacheDir, { recursive: true, force: true });
});

const env = { ...process.env, LOOKAHEAD_CACHE_DIR: cacheDir, LOOKAHEAD_HOST: '127.0.0.1' };

function serve(command: string, args: string[]) {
  return spawnServer(command, args, env, children);
}

/** The Dockerfile's HEALTHCHECK command, run as Docker would (exit status 0 = healthy). */
function healthcheck(port: string): number {
  const match = /HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])/.exec(readFileSync('Dockerfile', 'utf8'));
  const [cmd, ...args] = JSON.parse(match![1]) as string[];
  try {
    execFileSync(cmd === 'node' ? process.execPath : cmd, args, { env: { ...process.env, LOOKAHEAD_PORT: port }, stdio: 'ignore', timeout: 10_000 });
    return 0;
  } catch (err) {
    return (err as { status: number }).status;
  }
}

describe('node --import tsx src/main.ts (the Docker CMD)', () => {
  it('with no model serves the shipped chat-llama-5m: words, lookahead stats; healthy once ready; exits 0 on SIGTERM', async () => {
    const run = serve(process.execPath, ['--import', 'tsx', 'src/main.ts', '--port', '0', '--threads', '1']);
    const url = await run.url;
    expect(run.stderr()).toMatch(/serving the shipped chat-llama-5m/);
    expect(run.stderr()).toMatch(/npm start -- --model /);
    expect(healthcheck(new URL(url).port)).toBe(0);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat-llama-5m', messages: [{ role: 'user', content: 'What is a virus?' }], max_tokens: 24, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[]; lookahead: { tokens_per_step: number } };
    // A trained model answers in (English-looking) words, unlike the synthetic one's byte noise.
    expect(body.choices[0].message.content).toMatch(/\b[a-z]{3,}\b.*\b[a-z]{3,}\b/i);
    expect(body.lookahead.tokens_per_step).toBeGreaterThanOrEqual(1);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(healthcheck(new URL(url).port)).not.toBe(0);
  });

  it('the healthcheck fails while the model is still loading', async () => {
    // A fresh cache makes the server build the graph first; it listens (loading) meanwhile.
    const run = serve(process.execPath, ['--import', 'tsx', 'src/main.ts', '--model', 'builtin:synthetic', '--port', '0', '--threads', '1', '--cache-dir', join(cacheDir, 'fresh')]);
    const port = await new Promise<string>((resolve) => {
      const poll = () => {
        const m = /"address":"http:\/\/[^:]+:(\d+)"/.exec(run.stderr());
        if (m) resolve(m[1]);
        else setTimeout(poll, 10);
      };
      poll();
    });
    const loading = await fetch(`http://127.0.0.1:${port}/ready`);
    if (loading.status === 503) expect(healthcheck(port)).not.toBe(0);
    await run.url;
    expect(healthcheck(port)).toBe(0);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('refuses an invalid setting with a message naming it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--port', 'eighty'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/server\.port.*flag --port/);
  });
});

describe('npm start', () => {
  it('passes SIGTERM to the server, which drains and exits: nothing keeps listening after npm is gone', async () => {
    const run = serve('npm', ['start', '--', '--model', 'builtin:synthetic', '--port', '0', '--threads', '1']);
    const url = await run.url;
    expect((await fetch(`${url}/health`)).status).toBe(200);
    run.child.kill('SIGTERM');
    await run.exit;
    await new Promise((r) => setTimeout(r, 500));
    expect(run.stderr()).toMatch(/SIGTERM: taking no new requests/);
    expect(run.stderr()).toMatch(/"msg":"stopped"/);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  // The server gets the signal twice at once (from the group, and from npm forwarding it): one request to stop.
  it('SIGTERM or SIGINT to the whole process group (kill -- -PGID, Ctrl-C) drains, snapshots the tries and exits 0', async () => {
    const stopByGroup = async (signal: 'SIGTERM' | 'SIGINT') => {
      const snapshot = join(cacheDir, `tries-${signal}.bin`);
      const run = spawnServer('npm', ['start', '--', '--model', 'builtin:synthetic', '--port', '0', '--threads', '1', '--trie-snapshot', snapshot], env, children, true);
      const url = await run.url;
      const document = { documents: ['The keeper climbed the stairs of the lighthouse.'] };
      const posted = await fetch(`${url}/v1/lookahead/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(document) });
      expect(posted.status).toBe(200);
      process.kill(-run.child.pid!, signal);
      expect(await run.exit).toBe(0);
      expect(run.stderr()).not.toMatch(/exiting now/);
      expect(run.stderr()).toMatch(/global tries saved to/);
      expect(run.stderr()).toMatch(/"msg":"stopped"/);
      expect(statSync(snapshot).size).toBeGreaterThan(0);
    };
    await Promise.all([stopByGroup('SIGTERM'), stopByGroup('SIGINT')]);
  });
});
