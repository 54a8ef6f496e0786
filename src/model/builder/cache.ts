import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, META_FILE, type BuildLogger } from './build.js';
import { BUILDER_VERSION, DEFAULT_BUILD_OPTIONS, nbitsSettings, type BuildOptions } from './options.js';
import type { WeightSource } from './source.js';

/** The cache directory name for a source built with options: any change to either builds anew. */
export function buildKey(source: WeightSource, options: BuildOptions): string {
  const o = { ...DEFAULT_BUILD_OPTIONS, ...options };
  const canonical = JSON.stringify([BUILDER_VERSION, source.cacheKey, o.dtype, o.attention, o.layout, o.kv ?? 'host', o.externalData ?? null, o.dtype === 'q8' || o.dtype === 'q4' ? nbitsSettings(o.dtype, o.nbits) : null]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 20);
}

/**
 * Returns the directory of the built model, building it on first use. The build goes to a temporary directory
 * that is renamed into place, so an interrupted build never leaves a half-written model behind.
 */
export async function ensureBuilt(source: WeightSource, options: BuildOptions, cacheDir: string, log: BuildLogger = console.error): Promise<string> {
  const dir = join(cacheDir, buildKey(source, options));
  if (existsSync(join(dir, META_FILE))) return dir;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    await buildModel(source, options, tmp, log);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    // Another process may have finished the same build first.
    if (existsSync(join(dir, META_FILE))) return dir;
    throw err;
  }
  return dir;
}
