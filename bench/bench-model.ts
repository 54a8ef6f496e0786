/**
 * The benchmark model: chat-llama-5m widened function-preservingly to the compute profile of a 150M-parameter
 * Llama by the shared tool. It answers token for token like chat-llama-5m, so its lookahead numbers are that
 * model's, at a forward cost where batching and draft sizes matter as they do on real models.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchError } from './errors.js';

export const WIDE_MODEL = 'wide150m';

const SHARED = fileURLToPath(new URL('../../shared', import.meta.url));
export const WIDEN_TOOL = join(SHARED, 'tools/widen-model.mjs');
export const WIDEN_SOURCE = join(SHARED, 'data/models/chat-llama-5m');
/** Written last: a directory without it is a build that was interrupted. */
const DONE_MARK = '.widen-complete';

export function defaultWideDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'lookahead-proxy/bench', WIDE_MODEL);
}

export function isBuilt(dir: string): boolean {
  return existsSync(join(dir, DONE_MARK));
}

/** Builds the model into `out` unless it is already there; returns whether it built. Atomic: a temp dir renamed. */
export function buildWideModel(out: string, log: (line: string) => void, from = { tool: WIDEN_TOOL, source: WIDEN_SOURCE }): boolean {
  if (isBuilt(out)) {
    log(`${out}: already built`);
    return false;
  }
  for (const [what, path] of [['the shared tool', from.tool], ['the source model', from.source]]) {
    if (!existsSync(path)) throw new BenchError(`widen-model needs ${what} at ${path} (../shared beside the repository); it is absent here`);
  }
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  log(`widening ${from.source} into ${out}…`);
  const r = spawnSync(process.execPath, [from.tool, from.source, tmp], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new BenchError(`widen-model failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().slice(-1000)}`);
  }
  log(r.stdout.trim().replace(tmp, out));
  writeFileSync(join(tmp, DONE_MARK), `${new Date().toISOString()}\n`);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return true;
}

/** `--model wide150m` names the benchmark model (built on first use); anything else is a path or id as given. */
export function resolveBenchModel(model: string | null, log: (line: string) => void): string | null {
  if (model !== WIDE_MODEL) return model;
  const dir = defaultWideDir();
  buildWideModel(dir, log);
  return dir;
}
