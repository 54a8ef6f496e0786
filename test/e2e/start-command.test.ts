import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The Docker image's CMD, run outside Docker: it must come up, answer /health and stop cleanly on SIGTERM. */
describe('node --import tsx src/main.ts', () => {
  it('serves /health and exits 0 on SIGTERM', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'lookahead-start-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--port', '0', '--threads', '1'], {
      env: { ...process.env, LOOKAHEAD_CACHE_DIR: cacheDir, LOOKAHEAD_HOST: '127.0.0.1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /"url":"(http:\/\/[^"]+)"/.exec(stderr);
          if (m) resolve(m[1]);
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code} before serving:\n${stderr}`)));
      });
      // Whoever starts it without a model learns that the output is noise and how to serve a real one.
      expect(stderr).toMatch(/synthetic default.*noise/);
      expect(stderr).toMatch(/npm start -- --model /);
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(200);
      expect(((await health.json()) as { status: string }).status).toBe('ok');
      const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(cacheDir, { recursive: true, force: true });
    }
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
