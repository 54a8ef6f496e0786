import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOpenAI } from '@ai-sdk/openai';
import { OpenAIEmbeddings } from '@langchain/openai';
import { OpenAIEmbedding } from '@llamaindex/openai';
import { embed, embedMany } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createApp } from '../../src/server/app.js';
import { listen, type RunningServer } from '../../src/server/serve.js';
import { TINY_BERT, writeBertExport } from '../helpers/bert-export.js';
import { startRealServer, type RealServer } from '../helpers/real-server.js';
import { ScriptedEngine } from '../helpers/scripted-engine.js';

/**
 * /v1/embeddings with the real clients: a local embedding model (a tiny random BERT export) on one real server, the
 * same model reached through a second one that forwards to it as its upstream, and a server with neither.
 */
const EMBED = 'tiny-embed';
const DIM = TINY_BERT.hidden;
let dir: string;
let back: RealServer;
let front: RealServer;
let bare: RunningServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'embeddings-e2e-'));
  writeBertExport(join(dir, 'bert'));
  back = await startRealServer(['--embedding-model', join(dir, 'bert'), '--embedding-model-id', EMBED, '--learn-from-embeddings', '--context-length', '256']);
  front = await startRealServer(['--upstream', back.baseURL, '--learn-from-embeddings', '--context-length', '256']);
  bare = await listen(createApp({ engine: new ScriptedEngine(), config: loadConfig([], {}) }), '127.0.0.1', 0);
});
afterAll(async () => {
  await bare?.close(true);
  await front?.close();
  await back?.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = (baseURL: string) => new OpenAI({ baseURL, apiKey: 'sk-local', maxRetries: 0 });
const TEXTS = ['What does the prefix cache keep?', 'The server answers with the model and the tokens of the document.'];

async function globalTrieNodes(server: RealServer): Promise<number> {
  return ((await (await fetch(`${server.baseURL}/lookahead/stats`)).json()) as { trie_nodes: { global: number } }).trie_nodes.global;
}

describe('/v1/embeddings on a local model', () => {
  it('answers the openai SDK in float and base64 alike, unit vectors of the model size, usage counted', async () => {
    const sdk = client(back.baseURL);
    const float = await sdk.embeddings.create({ model: EMBED, input: TEXTS, encoding_format: 'float' });
    expect(float.model).toBe(EMBED);
    expect(float.data.map((d) => d.index)).toEqual([0, 1]);
    for (const d of float.data) {
      expect(d.embedding).toHaveLength(DIM);
      expect(Math.hypot(...d.embedding)).toBeCloseTo(1, 5);
    }
    expect(float.usage.prompt_tokens).toBeGreaterThan(TEXTS.length * 2);
    expect(float.usage.total_tokens).toBe(float.usage.prompt_tokens);
    const base64 = await sdk.embeddings.create({ model: EMBED, input: TEXTS, encoding_format: 'base64' });
    const raw = base64.data[1].embedding as unknown as string;
    expect(typeof raw).toBe('string');
    expect(Array.from(new Float32Array(Uint8Array.from(Buffer.from(raw, 'base64')).buffer))).toEqual(float.data[1].embedding);
    // With no encoding_format the SDK asks for base64 and decodes it: the same floats.
    expect((await sdk.embeddings.create({ model: EMBED, input: TEXTS[1] })).data[0].embedding).toEqual(float.data[1].embedding);
  });

  it('gives the AI SDK (embed, embedMany), LangChain and LlamaIndex the same vectors', async () => {
    const reference = (await client(back.baseURL).embeddings.create({ model: EMBED, input: TEXTS, encoding_format: 'float' })).data.map((d) => d.embedding);
    const model = createOpenAI({ baseURL: back.baseURL, apiKey: 'sk-local' }).embedding(EMBED);
    expect((await embed({ model, value: TEXTS[0] })).embedding).toEqual(reference[0]);
    const many = await embedMany({ model, values: TEXTS });
    expect(many.embeddings).toEqual(reference);
    expect(many.usage.tokens).toBeGreaterThan(0);
    const langchain = new OpenAIEmbeddings({ model: EMBED, apiKey: 'sk-local', configuration: { baseURL: back.baseURL } });
    expect(await langchain.embedQuery(TEXTS[1])).toEqual(reference[1]);
    expect(await langchain.embedDocuments(TEXTS)).toEqual(reference);
    const llamaindex = new OpenAIEmbedding({ model: EMBED, apiKey: 'sk-local', baseURL: back.baseURL });
    expect(await llamaindex.getTextEmbedding(TEXTS[1])).toEqual(reference[1]);
    expect(await llamaindex.getTextEmbeddings(TEXTS)).toEqual(reference);
  });

  it('takes dimensions equal to the model size only, and refuses ids outside its vocabulary', async () => {
    const sdk = client(back.baseURL);
    expect((await sdk.embeddings.create({ model: EMBED, input: 'x', dimensions: DIM, encoding_format: 'float' })).data[0].embedding).toHaveLength(DIM);
    const err = (await sdk.embeddings.create({ model: EMBED, input: 'x', dimensions: 8 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(400);
    expect(err.param).toBe('dimensions');
    const ids = (await sdk.embeddings.create({ model: EMBED, input: [[2, 60, 3], [2, 99_999, 3]] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(ids.status).toBe(400);
    expect(ids.param).toBe('input[1]');
  });

  it('lists the embedding model with its context length', async () => {
    const listed = (await client(back.baseURL).models.list()).data as unknown as { id: string; context_length: number; max_model_len: number }[];
    expect(listed.find((m) => m.id === EMBED)).toMatchObject({ context_length: TINY_BERT.maxPositions, max_model_len: TINY_BERT.maxPositions });
    expect(listed.find((m) => m.id === back.modelId)).toMatchObject({ context_length: 256, max_model_len: 256 });
    // Through a server that forwards to this one, the upstream's entries keep their lengths.
    const proxied = (await client(front.baseURL).models.list()).data as unknown as { id: string; context_length: number }[];
    expect(proxied.find((m) => m.id === EMBED)?.context_length).toBe(TINY_BERT.maxPositions);
  });
});

describe('/v1/embeddings forwarded and refused', () => {
  it('forwards a model the upstream serves and learns its texts locally (--learn-from-embeddings)', async () => {
    const direct = await client(back.baseURL).embeddings.create({ model: EMBED, input: TEXTS, encoding_format: 'float' });
    const before = await globalTrieNodes(front);
    const proxied = await client(front.baseURL).embeddings.create({ model: EMBED, input: TEXTS, encoding_format: 'float' });
    expect(proxied.data.map((d) => d.embedding)).toEqual(direct.data.map((d) => d.embedding));
    expect(proxied.usage).toEqual(direct.usage);
    // Learning runs after the answer: the trie grows shortly after.
    await expect.poll(() => globalTrieNodes(front), { timeout: 10_000 }).toBeGreaterThan(before);
  });

  it('keeps the upstream error status and body', async () => {
    const err = (await client(front.baseURL).embeddings.create({ model: EMBED, input: 'x', dimensions: 3 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(400);
    expect(err.param).toBe('dimensions');
  });

  it('answers 404 model_not_found naming both flags when neither serves the model', async () => {
    const err = (await client(`${bare.url}/v1`).embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(404);
    expect(err.code).toBe('model_not_found');
    expect(err.message).toContain('--embedding-model');
    expect(err.message).toContain('--upstream');
  });
});

describe('/tokenize and /detokenize', () => {
  const post = async (path: string, body: object) => {
    const res = await fetch(`${back.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('counts what chat and completions count in usage.prompt_tokens', async () => {
    const messages = [
      { role: 'developer' as const, content: 'Answer in one line.' },
      { role: 'user' as const, content: 'What does the prefix cache keep?' },
    ];
    const chat = await client(back.baseURL).chat.completions.create({ model: back.modelId, messages, max_tokens: 2, temperature: 0 });
    const counted = await post('/tokenize', { model: back.modelId, messages });
    expect(counted.status).toBe(200);
    expect(counted.body.count).toBe(chat.usage!.prompt_tokens);
    expect(counted.body.max_model_len).toBe(256);
    expect(counted.body.tokens).toHaveLength(chat.usage!.prompt_tokens);
    // A developer message is the system turn (the template names no developer role).
    const asSystem = await post('/tokenize', { model: back.modelId, messages: [{ ...messages[0], role: 'system' }, messages[1]] });
    expect(asSystem.body.tokens).toEqual(counted.body.tokens);

    const prompt = 'Once upon a time, the cache';
    const completion = await client(back.baseURL).completions.create({ model: back.modelId, prompt, max_tokens: 2, temperature: 0 });
    const plain = await post('/tokenize', { prompt });
    expect(plain.body.count).toBe(completion.usage!.prompt_tokens);
    const without = await post('/tokenize', { prompt, add_special_tokens: false });
    expect(without.body.count).toBeLessThanOrEqual(plain.body.count as number);

    expect((await post('/detokenize', { tokens: without.body.tokens })).body.prompt).toBe(prompt);
  });

  it('says what is wrong with a bad body', async () => {
    expect((await post('/tokenize', {})).status).toBe(400);
    expect((await post('/tokenize', { model: 'nope', prompt: 'x' })).status).toBe(404);
    const bad = await post('/detokenize', { tokens: [1, 10_000_000] });
    expect(bad.status).toBe(400);
    expect((bad.body.error as { param: string }).param).toBe('tokens[1]');
  });
});
