import { z } from 'zod';
import { defaultConfig } from './defaults.js';
import { CONFIG_ENV, CONFIG_FLAG, MODE_ENV, MODE_FLAG, OPTIONS, optionsByTopic, TOPICS, type OptionSpec, type Topic } from './options.js';
import { configSchema } from './schema.js';

/**
 * docs/configuration.md, generated from the schema, the defaults and the option table, so the reference cannot drift
 * from what the loader accepts (test/unit/config-reference.test.ts compares the file with this).
 */

/** Settings with no flag or env var of their own: set in the config file (or, for two, through `--lookahead`). */
const FILE_ONLY: Record<string, { topic: Topic; help: string }> = {
  'auth.apiKeys': { topic: 'auth', help: 'tenants: `[{key, tenant}]`, each key a tenant of its own' },
  'hub.token': { topic: 'model', help: 'Hugging Face token for private or gated repos' },
  'lookahead.enabled': { topic: 'lookahead', help: 'draft at all (`--lookahead off` sets false)' },
  'lookahead.layout': { topic: 'lookahead', help: 'draft tree layout (`--lookahead hier|par|one` sets it)' },
};

/** Defaults computed from the environment at start, described instead of printed as this machine's values. */
const ENV_DEFAULTS: Record<string, string> = {
  cacheDir: '`$XDG_CACHE_HOME/lookahead-proxy`, else `~/.cache/lookahead-proxy`',
  threads: 'the number of cores',
  'hub.token': '`$HF_TOKEN`, else none',
};

type JsonSchema = {
  type?: string;
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  format?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
};

export function configurationReference(): string {
  const root = z.toJSONSchema(configSchema, { unrepresentable: 'any' }) as JsonSchema;
  const defaults = defaultConfig({});
  const schemas = new Map(leaves(root, ''));
  const covered = new Set([...OPTIONS.map((o) => o.path), ...Object.keys(FILE_ONLY)]);
  const missing = [...schemas.keys()].filter((path) => !covered.has(path));
  if (missing.length > 0) throw new Error(`config settings with neither an option (src/config/options.ts) nor a FILE_ONLY entry: ${missing.join(', ')}`);
  const describe = (path: string) => ENV_DEFAULTS[path] ?? code(valueAt(defaults, path));

  const rows = optionsByTopic().map(([topic, options]): [Topic, string[]] => [
    topic,
    [
      ...options.map((o) => row(o.path, o, o.help, schemas.get(o.path)!, describe(o.path))),
      ...Object.entries(FILE_ONLY)
        .filter(([, f]) => f.topic === topic)
        .map(([path, f]) => row(path, undefined, f.help, schemas.get(path)!, describe(path))),
    ],
  ]);

  const out = [
    '# Configuration reference',
    '',
    'Every setting the server reads: its flag, environment variable and config-file key, its default and the values',
    'it accepts. Sources are merged as defaults ← config file ← environment ← flags; a value out of bounds stops the',
    'start with the setting and the source that gave it. `npm start -- --help` lists the same flags in the same order.',
    '',
    `Generated from \`src/config/\` by \`npm run cli -- config-reference > docs/configuration.md\`; a test fails when`,
    'this file and the schema disagree.',
    '',
    `- \`--${CONFIG_FLAG} FILE\` (\`${CONFIG_ENV}\`): a YAML or JSON file whose keys are the dotted paths below, nested`,
    '  (`queue: {kvBudgetMb: 4096}`); see `config/example.yaml`. Unknown keys are an error.',
    `- \`--${MODE_FLAG} off|hier|par|one\` (\`${MODE_ENV}\`): sets \`lookahead.enabled\` and \`lookahead.layout\` at once.`,
  ];
  for (const [topic, lines] of rows) {
    out.push('', `## ${TOPICS[topic]}`, '', '| flag | env | config key | default | accepts | what |', '|---|---|---|---|---|---|', ...lines);
  }
  return `${out.join('\n')}\n`;
}

function row(path: string, option: OptionSpec | undefined, help: string, schema: JsonSchema, fallback: string): string {
  const flag = option?.flag ? `\`--${option.flag}\`` : '—';
  const env = option ? `\`${option.env}\`` : '—';
  return `| ${flag} | ${env} | \`${path}\` | ${fallback} | ${accepts(schema)} | ${help.replaceAll('|', '\\|')} |`;
}

/** Every scalar or list setting, depth first in schema order; objects are walked, not listed. */
function* leaves(schema: JsonSchema, prefix: string): Generator<[string, JsonSchema]> {
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (child.type === 'object' && child.properties) yield* leaves(child, path);
    else yield [path, child];
  }
}

function valueAt(tree: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], tree);
}

function code(value: unknown): string {
  if (value === null) return 'none';
  if (Array.isArray(value) && value.length === 0) return 'none';
  return `\`${Array.isArray(value) ? value.join(',') : String(value)}\``;
}

function accepts(s: JsonSchema): string {
  if (s.anyOf) {
    const values = s.anyOf.filter((a) => a.type !== 'null').map(accepts);
    return s.anyOf.some((a) => a.type === 'null') ? `${values.join(' or ')}, or unset` : values.join(' or ');
  }
  if (s.const !== undefined) return `\`${String(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  switch (s.type) {
    case 'integer': {
      const min = s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : s.minimum;
      const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
      if (min !== undefined && max !== undefined) return `integer ${min}–${max}`;
      return min !== undefined ? `integer ≥ ${min}` : 'integer';
    }
    case 'boolean':
      return '`true` \\| `false`';
    case 'string':
      if (s.format === 'uri') return 'URL';
      return s.maxLength !== undefined ? `text, ≤ ${s.maxLength} characters` : 'text';
    case 'array':
      if (s.items?.type === 'object') return `list of {${Object.keys(s.items.properties ?? {}).join(', ')}}`;
      return `comma-separated list of ${s.items ? accepts(s.items) : 'values'}`;
    default:
      return 'any';
  }
}
