import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * How the EP is chosen and reported, through the CLI (the server shares the config path): an explicit EP that
 * cannot load is an error at start, `auto` falls back with log lines, and the JSON stats say which EP ran.
 * A Vulkan loader pointed at no driver stands in for a machine without a GPU.
 */
const run = promisify(execFile);
const cacheDir = mkdtempSync(join(tmpdir(), 'lookahead-ep-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));
const NO_GPU = { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json', XDG_RUNTIME_DIR: tmpdir() };

function generate(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'generate', '--prompt', 'hi', '--max-tokens', '3', '--json', '--threads', '1', '--cache-dir', cacheDir, ...args], {
    env: { ...process.env, ...NO_GPU, ...env },
  });
}

describe('execution provider choice (CLI)', () => {
  it('an explicit EP that cannot load fails at start, naming the EP and the fix', async () => {
    const err = (await generate(['--execution-provider', 'webgpu']).catch((e: unknown) => e)) as { code?: number; stderr?: string };
    expect(err.code).not.toBe(0);
    expect(err.stderr).toMatch(/execution provider webgpu is not available.*Vulkan adapter/);
  });

  it('the env var chooses it too', async () => {
    const err = (await generate([], { LOOKAHEAD_EXECUTION_PROVIDER: 'cuda' }).catch((e: unknown) => e)) as { code?: number; stderr?: string };
    expect(err.code).not.toBe(0);
    expect(err.stderr).toMatch(/execution provider cuda is not available.*CUDA/);
  });

  it('auto tries cuda, then webgpu, then runs on cpu, logging each; stats report the EP used', async () => {
    const { stdout, stderr } = await generate(['--execution-provider', 'auto']);
    expect(stderr).toMatch(/auto: cuda unavailable/);
    expect(stderr).toMatch(/auto: webgpu unavailable/);
    expect(stderr).toMatch(/auto: using cpu/);
    expect((JSON.parse(stdout.trim()) as { stats: { execution_provider: string } }).stats.execution_provider).toBe('cpu');
  });
});
