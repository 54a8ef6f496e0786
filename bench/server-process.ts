import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { defaultConfig } from '../src/config/defaults.js';
import { BenchError } from './errors.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const STDERR_TAIL = 4000;

export interface SpawnedServer {
  baseUrl: string;
  pid: number;
  /** The last of what the server wrote to stderr (its log). */
  stderr(): string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  model: string | null;
  /** Flags after ours: they win over the ones spawnServer sets. */
  extraArgs: string[];
  startupTimeoutMs: number;
  logLevel?: string;
  /**
   * Clients the harness will run at once: every one of them gets a running job (--max-running), since queueing
   * behind the server's job limit would measure the limit, not the scheduling.
   */
  clients?: number;
}

/**
 * Starts our server as a child process (its CPU and memory apart from the harness, as in real use) on a free
 * loopback port, and waits for /health. Startup is bounded; on failure the child's last stderr is in the error.
 */
export async function spawnServer(opts: SpawnOptions): Promise<SpawnedServer> {
  const room = opts.clients === undefined ? [] : ['--max-running', String(Math.max(defaultConfig(process.env).queue.maxRunning, opts.clients))];
  const port = await freePort();
  const args = [
    '--import',
    'tsx',
    'src/main.ts',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--log-level',
    opts.logLevel ?? 'warn',
    ...(opts.model ? ['--model', opts.model] : []),
    ...room,
    ...opts.extraArgs,
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-STDERR_TAIL);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + opts.startupTimeoutMs;
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  for (;;) {
    if (exitCode !== undefined) throw new BenchError(`the server exited with code ${exitCode} while starting:\n${stderr.trim()}`);
    if (Date.now() > deadline) {
      await stopChild(child, exited);
      throw new BenchError(`the server did not answer /health within ${opts.startupTimeoutMs / 1000} s:\n${stderr.trim()}`);
    }
    if (await healthy(baseUrl)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { baseUrl: `${baseUrl}/v1`, pid: child.pid!, stderr: () => stderr, stop: () => stopChild(child, exited) };
}

async function healthy(baseUrl: string): Promise<boolean> {
  try {
    // /ready, not /health: the server answers /health while it is still loading its model.
    const res = await request(`${baseUrl}/ready`, { signal: AbortSignal.timeout(2000) });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after a grace period: the harness never leaves a server behind. */
async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
