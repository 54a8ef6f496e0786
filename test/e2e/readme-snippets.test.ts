import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { runNode } from '../helpers/run-node.js';
import { startShippedServer, type RealServer } from '../helpers/real-server.js';

/**
 * The README's code, run as a reader would paste it: every TypeScript block against the real server on the shipped
 * model (its base URL swapped for the test server's), and every `npm start -- ...` line through the real flag parser.
 */
const ROOT = join(import.meta.dirname, '../..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const README_URL = 'http://127.0.0.1:8000/v1';

function blocks(lang: string): string[] {
  return [...README.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

let server: RealServer;
let dir: string;

beforeAll(async () => {
  server = await startShippedServer();
  // Inside the repository, so the snippets resolve its node_modules as a user's project would.
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  dir = mkdtempSync(join(ROOT, '.cache', 'readme-'));
});

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('README snippets', () => {
  const snippets = blocks('ts');

  it('has client snippets, each pointing at the default address', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(3);
    for (const s of snippets) expect(s).toContain(README_URL);
  });

  it.each(snippets.map((s, i) => [i, s] as const))('snippet %i runs against the real server and prints an answer', async (i, snippet) => {
    const file = join(dir, `snippet-${i}.mts`);
    writeFileSync(file, snippet.replaceAll(README_URL, server.baseURL));
    const run = await runNode(['--import', 'tsx', file], 90_000);
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().length).toBeGreaterThan(0);
  });

  it('every `npm start -- ...` line parses with the real flag parser', () => {
    const lines = blocks('sh')
      .flatMap((b) => b.split('\n'))
      .map((l) => /npm start -- (.*?)\s*(#.*)?$/.exec(l)?.[1])
      .filter((args): args is string => args !== undefined && args !== '--help');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const args of lines) expect(() => loadConfig(args.split(/\s+/), {}), args).not.toThrow();
  });
});
