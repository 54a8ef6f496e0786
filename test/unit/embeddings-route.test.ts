import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Embedder, EmbeddingInput } from '../../src/model/embedding/index.js';
import { createApp } from '../../src/server/app.js';
import { ScriptedEngine } from '../helpers/scripted-engine.js';

/**
 * The route's own decisions around a local embedding model, with a stand-in model (TEST DOUBLE: unit vectors along
 * one axis, a token per character): what --learn-from-embeddings feeds the tenant's trie, and that a tenant past its
 * document quota still gets its embeddings. The real model and clients are in test/e2e/embeddings.test.ts.
 */
const stubEmbedder: Embedder = {
  id: 'stub-embed',
  created: 1,
  info: { dimensions: 4, maxTokens: 64, pooling: 'mean' },
  async embed(inputs: EmbeddingInput[]) {
    const vectors = new Float32Array(inputs.length * 4);
    for (let i = 0; i < inputs.length; i++) vectors[i * 4] = 1;
    return { vectors, tokens: inputs.reduce((n, x) => n + x.length, 0) };
  },
  async close() {},
};

function setup(flags: string[]) {
  const engine = new ScriptedEngine();
  const app = createApp({ engine, config: loadConfig(flags, {}), embedder: stubEmbedder });
  const embed = (input: unknown) =>
    app.request('/v1/embeddings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stub-embed', input }) });
  return { engine, embed };
}

describe('POST /v1/embeddings and --learn-from-embeddings', () => {
  it('learns nothing without the flag', async () => {
    const { engine, embed } = setup([]);
    expect((await embed(['alpha beta', 'gamma'])).status).toBe(200);
    await new Promise((r) => setTimeout(r, 10));
    expect(engine.documents).toEqual([]);
  });

  it('feeds the texts (not token ids) to the tenant as documents with the flag', async () => {
    const { engine, embed } = setup(['--learn-from-embeddings']);
    const res = await embed(['alpha beta', 'gamma']);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(15);
    expect((await embed([[1, 2, 3]])).status).toBe(200);
    await expect.poll(() => engine.documents).toEqual([{ tenant: 'default', texts: ['alpha beta', 'gamma'] }]);
  });

  it('answers a tenant past its document quota, and learns only what the quota allows', async () => {
    const { engine, embed } = setup(['--learn-from-embeddings', '--max-document-bytes', '8']);
    const res = await embed('more than eight bytes');
    expect(res.status).toBe(200);
    expect((await embed('tiny')).status).toBe(200);
    await expect.poll(() => engine.documents).toEqual([{ tenant: 'default', texts: ['tiny'] }]);
  });
});
