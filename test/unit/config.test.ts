import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toEngineOptions } from '../../src/config/engine-options.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { usage } from '../../src/config/options.js';
import { lookaheadSchema } from '../../src/server/schemas.js';

const dir = mkdtempSync(join(tmpdir(), 'lookahead-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives the documented defaults with nothing set', () => {
    const c = loadConfig([], { XDG_CACHE_HOME: '/xdg' });
    expect(c.server).toEqual({ host: '127.0.0.1', port: 8000, bodyLimitBytes: 4 * 1024 * 1024, requestTimeoutMs: 600_000, shutdownGraceMs: 10_000, corsOrigins: [], workerWatchdogMs: 120_000 });
    expect(c.auth).toEqual({ apiKey: null, apiKeys: [], adminKey: null });
    expect(c.hub).toEqual({ endpoint: 'https://huggingface.co', token: null });
    expect(c.model).toBeNull();
    expect(c.cacheDir).toBe('/xdg/lookahead-proxy');
    expect(c.threads).toBeGreaterThan(0);
    expect(c.lookahead).toEqual({ enabled: true, decodingLength: 16, branchLength: 12, layout: 'hier' });
    expect(c.queue).toEqual({ maxQueued: 64, maxRunning: 16, maxBatchTokens: 256, kvBudgetMb: 2048, prefixCacheMb: 1024 });
    expect(c.limits).toEqual({ maxN: 8, maxTokens: 4096, maxJobsPerTenant: 32, maxDocumentBytes: 4 * 1024 * 1024, documentBytesPerMinute: 64 * 1024 * 1024 });
    expect(c.sessions).toEqual({ max: 1000, ttlSeconds: 3600, maxPerTenant: 100 });
    expect(c.globalTrie).toEqual({ maxNodes: 2_000_000, snapshotPath: null, maxTenants: 64 });
    expect(c.upstream.baseUrl).toBeNull();
    expect(c.sync).toEqual({ redisUrl: null, keyPrefix: 'lookahead', streamMaxLen: 100_000, snapshotIntervalMs: 60_000, sessionTurns: 16 });
    expect(toEngineOptions(c).shareAnswers).toBe(false);
  });

  it('takes the embedding model and the learning switch from flags (a switch by its name alone) or env', () => {
    expect(loadConfig([], {}).embedding).toEqual({ model: null, modelId: null, learn: false });
    expect(loadConfig(['--embedding-model', '/m/minilm', '--learn-from-embeddings'], {}).embedding).toEqual({ model: '/m/minilm', modelId: null, learn: true });
    expect(loadConfig(['--no-learn-from-embeddings'], { LOOKAHEAD_LEARN_FROM_EMBEDDINGS: 'true' }).embedding.learn).toBe(false);
    expect(loadConfig([], { LOOKAHEAD_LEARN_FROM_EMBEDDINGS: 'true', LOOKAHEAD_EMBEDDING_MODEL_ID: 'minilm' }).embedding).toMatchObject({ learn: true, modelId: 'minilm' });
    expect(errorOf(() => loadConfig([], { LOOKAHEAD_LEARN_FROM_EMBEDDINGS: 'yes' }))).toMatch(/embedding\.learn.*LOOKAHEAD_LEARN_FROM_EMBEDDINGS/);
  });

  it('turns replication on with --redis-url or LOOKAHEAD_REDIS_URL, and refuses a URL that is not redis://', () => {
    expect(loadConfig([], { LOOKAHEAD_REDIS_URL: 'redis://cache:6380/2' }).sync.redisUrl).toBe('redis://cache:6380/2');
    const c = loadConfig(['--redis-url', 'rediss://cache:6380', '--redis-prefix', 'qwen', '--sync-snapshot-ms', '5000'], {});
    expect(c.sync).toMatchObject({ redisUrl: 'rediss://cache:6380', keyPrefix: 'qwen', snapshotIntervalMs: 5000 });
    expect(toEngineOptions(c).shareAnswers).toBe(true);
    expect(errorOf(() => loadConfig(['--redis-url', 'http://cache:6379'], {}))).toMatch(/sync\.redisUrl.*flag --redis-url/);
  });

  it('reads tenant keys from the file, the single key and admin key from env/flags, HF_TOKEN for the hub', () => {
    const cfg = file('auth.yaml', 'auth:\n  apiKeys:\n    - { key: sk-a, tenant: acme }\n    - { key: sk-b, tenant: beta }\n');
    const c = loadConfig(['--config', cfg, '--admin-key', 'sk-admin'], { LOOKAHEAD_API_KEY: 'sk-one', HF_TOKEN: 'hf_x', LOOKAHEAD_HF_ENDPOINT: 'http://mirror:8080' });
    expect(c.auth).toEqual({ apiKey: 'sk-one', apiKeys: [{ key: 'sk-a', tenant: 'acme' }, { key: 'sk-b', tenant: 'beta' }], adminKey: 'sk-admin' });
    expect(c.hub).toEqual({ endpoint: 'http://mirror:8080', token: 'hf_x' });
    expect(errorOf(() => loadConfig(['--config', file('bad-auth.yaml', 'auth:\n  apiKeys:\n    - { key: sk-a }\n')], {}))).toMatch(/auth\.apiKeys\.0\.tenant/);
    // One key naming two tenants would silently mean the last one.
    const dup = file('dup-auth.yaml', 'auth:\n  apiKeys:\n    - { key: sk-a, tenant: acme }\n    - { key: sk-a, tenant: beta }\n');
    expect(errorOf(() => loadConfig(['--config', dup], {}))).toMatch(/auth\.apiKeys\[1\] \(tenant beta\): the same API key is already given by auth\.apiKeys\[0\]/);
  });

  it('layers file < env < flags', () => {
    const cfg = file('layers.yaml', 'server:\n  port: 9001\n  host: 10.0.0.1\nthreads: 3\nmodel: /from/file\n');
    const env = { LOOKAHEAD_PORT: '9002', LOOKAHEAD_THREADS: '5', LOOKAHEAD_UPSTREAM_URL: 'http://up:1/v1', LOOKAHEAD_UPSTREAM_API_KEY: 'sk-x' };
    const c = loadConfig(['--config', cfg, '--port', '9003', '--model', '/from/flag'], env);
    expect(c.server.port).toBe(9003);
    expect(c.server.host).toBe('10.0.0.1');
    expect(c.threads).toBe(5);
    expect(c.model).toBe('/from/flag');
    expect(c.upstream).toMatchObject({ baseUrl: 'http://up:1/v1', apiKey: 'sk-x' });
  });

  it('maps --lookahead off|layout onto the lookahead block', () => {
    expect(loadConfig(['--lookahead', 'off'], {}).lookahead.enabled).toBe(false);
    const c = loadConfig(['--lookahead', 'par', '--decoding-length', '8'], { LOOKAHEAD_MODE: 'off' });
    expect(c.lookahead).toMatchObject({ enabled: true, layout: 'par', decodingLength: 8 });
  });

  it('names field and source of an invalid value', () => {
    expect(errorOf(() => loadConfig([], { LOOKAHEAD_PORT: 'eighty' }))).toMatch(/server\.port.*env LOOKAHEAD_PORT/);
    expect(errorOf(() => loadConfig(['--port', '70000'], {}))).toMatch(/server\.port.*flag --port/);
    expect(errorOf(() => loadConfig(['--lookahead', 'zigzag'], {}))).toMatch(/lookahead\.layout.*flag --lookahead/);
    expect(errorOf(() => loadConfig(['--dtype', 'int3'], {}))).toMatch(/dtype.*flag --dtype/);
    const bad = file('bad.yaml', 'queue:\n  maxRunning: 0\n');
    expect(errorOf(() => loadConfig(['--config', bad], {}))).toMatch(new RegExp(`queue\\.maxRunning.*file ${bad}`));
    const typo = file('typo.json', '{"server": {"prot": 1}}');
    expect(errorOf(() => loadConfig(['--config', typo], {}))).toMatch(/server\.prot.*file .*typo\.json/);
  });

  it('reports unreadable files, bad syntax and unknown flags plainly', () => {
    expect(errorOf(() => loadConfig(['--config', join(dir, 'missing.yaml')], {}))).toMatch(/missing\.yaml.*ENOENT/);
    expect(errorOf(() => loadConfig(['--config', file('broken.json', '{"a":')], {}))).toMatch(/not valid JSON/);
    expect(errorOf(() => loadConfig(['--frobnicate', '1'], {}))).toMatch(/frobnicate/);
  });

  it('loads both example files', () => {
    const yaml = loadConfig(['--config', 'config/example.yaml'], {});
    expect(yaml.server.port).toBe(8000);
    expect(yaml.lookahead.layout).toBe('hier');
    const json = loadConfig(['--config', 'config/example.json'], {});
    expect(json.server).toMatchObject({ host: '0.0.0.0', port: 8080, bodyLimitBytes: 4 * 1024 * 1024 });
    expect(json.lookahead).toEqual({ enabled: true, decodingLength: 24, branchLength: 8, layout: 'par' });
    expect(json.upstream.baseUrl).toBe('https://api.openai.com/v1');
  });

  it('maps onto EngineOptions', () => {
    const c = loadConfig(['--context-length', '512', '--model', '/m', '--corpus', '/c.jsonl'], {});
    const o = toEngineOptions(c);
    expect(o).toMatchObject({ model: '/m', contextLength: 512, corpus: '/c.jsonl', maxQueued: 64, maxRunning: 16, executionProvider: 'cpu' });
    expect(o.lookahead).toEqual(c.lookahead);
    expect('modelId' in toEngineOptions(loadConfig([], {}))).toBe(false);
  });

  it("a request's lookahead overrides take exactly the config's bounds (one definition)", () => {
    const valid = (decoding: number, branch: number) => {
      const request = lookaheadSchema.safeParse({ decoding_length: decoding, branch_length: branch }).success;
      let config = true;
      try {
        loadConfig(['--decoding-length', String(decoding), '--branch-length', String(branch)], {});
      } catch {
        config = false;
      }
      expect(request, `${decoding}/${branch}: request and config agree`).toBe(config);
      return config;
    };
    expect([valid(1, 1), valid(256, 64)]).toEqual([true, true]);
    expect([valid(0, 1), valid(257, 1), valid(16, 0), valid(16, 65)]).toEqual([false, false, false, false]);
  });

  it('batch and K/V flags reach EngineOptions', () => {
    const o = toEngineOptions(loadConfig(['--max-batch-tokens', '64'], { LOOKAHEAD_KV_BUDGET_MB: '3' }));
    expect(o).toMatchObject({ maxBatchTokens: 64, kvBudgetBytes: 3 * 2 ** 20 });
    expect(errorOf(() => loadConfig(['--kv-budget-mb', '0'], {}))).toMatch(/kvBudgetMb/);
  });

  it('documents every flag in --help', () => {
    const text = usage();
    for (const flag of ['--model', '--port', '--host', '--config', '--context-length', '--cache-dir', '--threads', '--upstream', '--corpus', '--dtype', '--execution-provider', '--lookahead']) {
      expect(text).toContain(flag);
    }
  });
});
