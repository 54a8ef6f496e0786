import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { AppError } from '../errors.js';
import { defaultConfig } from './defaults.js';
import { CONFIG_ENV, CONFIG_FLAG, MODE_ENV, MODE_FLAG, OPTIONS, type OptionKind } from './options.js';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends AppError {
  override readonly code = 'invalid_config';
}

type Tree = Record<string, unknown>;
/** Dotted path → where its value came from ("file x.yaml", "env LOOKAHEAD_PORT", "flag --port"). */
type Origins = Map<string, string>;

/**
 * defaults ← config file ← env (LOOKAHEAD_*) ← CLI flags, validated once; an invalid value is reported with
 * the field and the source that set it.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const flags = parseFlags(argv);
  const origins: Origins = new Map();
  let merged: Tree = defaultConfig(env) as unknown as Tree;

  const file = flags[CONFIG_FLAG] ?? env[CONFIG_ENV];
  if (file) {
    const fromFile = readConfigFile(file);
    recordLeaves(fromFile, '', `file ${file}`, origins);
    merged = deepMerge(merged, fromFile);
  }
  merged = deepMerge(merged, layer((o) => env[o.env], (o) => `env ${o.env}`, env[MODE_ENV], `env ${MODE_ENV}`, origins));
  merged = deepMerge(
    merged,
    layer((o) => (o.flag ? flags[o.flag] : undefined), (o) => `flag --${o.flag}`, flags[MODE_FLAG], `flag --${MODE_FLAG}`, origins),
  );

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error.issues, origins));
  rejectDuplicateKeys(parsed.data.auth);
  return parsed.data;
}

/** One key naming two tenants (or a tenant and the admin) would silently mean whichever came last. */
function rejectDuplicateKeys(auth: Config['auth']): void {
  const seen = new Map<string, string>();
  const entries: [string, string][] = auth.apiKeys.map((k, i) => [k.key, `auth.apiKeys[${i}] (tenant ${k.tenant})`]);
  if (auth.apiKey) entries.push([auth.apiKey, 'auth.apiKey']);
  if (auth.adminKey) entries.push([auth.adminKey, 'auth.adminKey']);
  for (const [key, where] of entries) {
    const first = seen.get(key);
    if (first) throw new ConfigError(`${where}: the same API key is already given by ${first}; each key must be unique`);
    seen.set(key, where);
  }
}

function parseFlags(argv: readonly string[]): Record<string, string | undefined> {
  const options: Record<string, { type: 'string' | 'boolean' }> = { [CONFIG_FLAG]: { type: 'string' }, [MODE_FLAG]: { type: 'string' } };
  // A switch is on by its name alone (`--learn-from-embeddings`), off with the `--no-` form.
  for (const o of OPTIONS) if (o.flag) options[o.flag] = { type: o.kind === 'bool' ? 'boolean' : 'string' };
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, allowNegative: true });
    return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v === undefined ? undefined : String(v)]));
  } catch (err) {
    throw new ConfigError(`command line: ${(err as Error).message} (see --help)`);
  }
}

function readConfigFile(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw new ConfigError(`config file ${path}: the top level must be a mapping of settings`);
  return value;
}

/** Builds the partial config one source (env or flags) contributes. */
function layer(
  read: (o: (typeof OPTIONS)[number]) => string | undefined,
  describe: (o: (typeof OPTIONS)[number]) => string,
  mode: string | undefined,
  modeSource: string,
  origins: Origins,
): Tree {
  const out: Tree = {};
  for (const o of OPTIONS) {
    const raw = read(o);
    if (raw === undefined) continue;
    setPath(out, o.path, coerce(raw, o.kind));
    origins.set(o.path, describe(o));
  }
  if (mode !== undefined) {
    const lookahead: Tree = mode === 'off' ? { enabled: false } : { enabled: true, layout: mode };
    for (const [key, value] of Object.entries(lookahead)) {
      setPath(out, `lookahead.${key}`, value);
      origins.set(`lookahead.${key}`, modeSource);
    }
  }
  return out;
}

/** Strings that do not parse are kept as strings so validation reports them with their source. */
function coerce(raw: string, kind: OptionKind): unknown {
  const trimmed = raw.trim();
  if ((kind === 'nullable' || kind === 'nullableInt') && (trimmed === '' || trimmed === 'null')) return null;
  if (kind === 'int' || kind === 'nullableInt') return /^-?\d+$/.test(trimmed) ? Number(trimmed) : raw;
  if (kind === 'list') return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (kind === 'bool') return trimmed === 'true' ? true : trimmed === 'false' ? false : raw;
  return raw;
}

function describeIssues(issues: readonly z.core.$ZodIssue[], origins: Origins): string {
  const lines = issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => (path ? `${path}.${k}` : k)) : [path];
    const field = keys.join(', ') || '(root)';
    return `${field}: ${issue.message} (from ${originOf(keys[0], origins)})`;
  });
  return `invalid configuration:\n  ${lines.join('\n  ')}`;
}

function originOf(path: string, origins: Origins): string {
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const origin = origins.get(p);
    if (origin) return origin;
  }
  return 'defaults';
}

function recordLeaves(value: Tree, prefix: string, source: string, origins: Origins): void {
  for (const [key, child] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(child)) recordLeaves(child, path, source, origins);
    origins.set(path, source);
  }
}

function setPath(target: Tree, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]] = value;
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? deepMerge(out[key] as Tree, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
