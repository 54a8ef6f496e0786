import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../src/config/defaults.js';
import { SentenceEncoder } from '../src/model/embedding/encoder.js';
import { loadTokenizer } from '../src/model/load.js';
import { MINILM_SHAPE, TINY_BERT, writeBertExport } from '../test/helpers/bert-export.js';
import { greedyCorpus, replayDrafts, WIDE_MODEL_COST } from './draft-replay.js';
import { BenchError } from './errors.js';
import { spawnServer, type SpawnedServer } from './server-process.js';

/**
 * Two measurements of /v1/embeddings: the local model's throughput (inputs/s at a fixed token count), and what
 * --learn-from-embeddings buys a RAG app whose prompts carry only the question (its documents were embedded first).
 */

const CACHE = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'lookahead-proxy', 'bench');

/** A random BERT of all-MiniLM-L6-v2's shape (weights do not change the cost), written once into the bench cache. */
function minilmShaped(): string {
  const dir = join(CACHE, 'minilm-shaped');
  if (!existsSync(join(dir, 'onnx', 'model.onnx'))) writeBertExport(dir, MINILM_SHAPE);
  return dir;
}

export interface ThroughputOptions {
  /** An embedding export; null = the MiniLM-shaped random one. */
  model: string | null;
  tokens: number;
  inputs: number;
  threads: number;
}

/** In process, no HTTP: inputs of exactly `tokens` ids each, embedded in the encoder's own batches after a warm-up. */
export async function embeddingThroughput(o: ThroughputOptions): Promise<number> {
  const dir = o.model ?? minilmShaped();
  const encoder = await SentenceEncoder.load(dir, o.threads);
  if (o.tokens > encoder.info.maxTokens) throw new BenchError(`--tokens ${o.tokens} is past the model's ${encoder.info.maxTokens}`, 2);
  try {
    // The model's own [CLS] … [SEP] around ids from the vocabulary's body, varied per input.
    const [cls, sep] = encoder.tokenize([''])[0];
    const make = (i: number) => [cls, ...Array.from({ length: o.tokens - 2 }, (_, j) => 200 + ((i * 31 + j * 7) % 1000)), sep];
    await encoder.embed(Array.from({ length: 32 }, (_, i) => make(i)));
    const inputs = Array.from({ length: o.inputs }, (_, i) => make(i + 1));
    const t0 = performance.now();
    const { tokens } = await encoder.embed(inputs);
    const seconds = (performance.now() - t0) / 1000;
    const line = `embeddings: ${o.inputs} inputs of ${o.tokens} tokens on ${dir} (${o.threads} threads): ${(o.inputs / seconds).toFixed(1)} inputs/s, ${(tokens / seconds).toFixed(0)} tokens/s, dimension ${encoder.info.dimensions}`;
    process.stdout.write(`${line}\n`);
    return 0;
  } finally {
    await encoder.release();
  }
}

export interface LearnOptions {
  /** The generation model (null = the shipped chat-llama-5m). */
  model: string | null;
  workload: string;
  requests: number;
  maxTokens: number;
  out: string | null;
  /** Greedy answers' cache (draft-replay's). */
  cache: string;
  /** Also run the arms on live servers, for decode speed (timing: a quiet machine only). */
  live: boolean;
}

interface RagItem {
  system: string;
  document: string;
  question: string;
}

/** rag-eval's context-carrying rows, split into the document (what gets embedded) and the question. */
function ragItems(path: string, n: number): RagItem[] {
  const items: RagItem[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const row = JSON.parse(line) as { messages: { role: string; content: string }[] };
    const user = row.messages.at(-1)!.content;
    const m = /^Context:\n([\s\S]*?)\n\nQuestion:\n?([\s\S]*)$/.exec(user);
    if (!m) continue;
    items.push({ system: row.messages.find((x) => x.role === 'system')?.content ?? '', document: m[1], question: m[2].trim() });
    if (items.length === n) break;
  }
  if (items.length === 0) throw new BenchError(`${path} has no rows whose user turn is "Context: ... Question: ..."`, 2);
  return items;
}

/** The two prompts of an item: only the question and a document id (its document was embedded), or the usual RAG one. */
const PROMPTS = {
  'id in the prompt': (x: RagItem, i: number) => `Document ${i + 1}.\n\nQuestion:\n${x.question}`,
  'document in the prompt': (x: RagItem) => `Context:\n${x.document}\n\nQuestion:\n${x.question}`,
};
type PromptKind = keyof typeof PROMPTS;

interface ArmRow {
  prompt: PromptKind;
  learnt: boolean;
  tokens_per_step: number;
  /** The speed-up the steps would give over plain decoding on draft-replay's cost curve (modelled, not timed). */
  modelled_speedup: number;
  /** Live servers only (--live): decode tokens per second, and the tokens/step the adaptive budget reached there. */
  decode_tokens_per_second?: number;
  live_tokens_per_step?: number;
}

/**
 * What --learn-from-embeddings buys a RAG app: its documents are embedded first, then its questions asked. The
 * count that does not depend on timing comes from draft-replay's protocol: greedy answers (lookahead off, cached),
 * replayed with the real proposer and budget on a fixed cost curve, with the embedded documents in the global scopes
 * (learnt) or not — for prompts that carry only a document id, and for the usual prompts that carry the document.
 * With --live, each arm also runs on a server of its own (with and without the flag) for decode speed.
 */
export async function learnFromEmbeddings(o: LearnOptions): Promise<number> {
  const items = ragItems(o.workload, o.requests);
  const work = mkdtempSync(join(tmpdir(), 'embed-learn-'));
  const rows: ArmRow[] = [];
  try {
    const tok = await loadTokenizer(o.model);
    const documents = items.map((x) => Int32Array.from(tok.encode(x.document, { addSpecialTokens: false })));
    for (const [prompt, make] of Object.entries(PROMPTS) as [PromptKind, (x: RagItem, i: number) => string][]) {
      // A workload file per prompt kind, so the greedy answers are cached under its name like draft-replay's.
      const file = join(o.cache, `rag-${prompt.replace(/ /g, '-')}-${createHash('sha256').update(o.workload).digest('hex').slice(0, 8)}.jsonl`);
      mkdirSync(o.cache, { recursive: true });
      writeFileSync(file, items.map((x, i) => JSON.stringify({ messages: [{ role: 'system', content: x.system }, { role: 'user', content: make(x, i) }] })).join('\n'));
      const corpus = await greedyCorpus({ model: o.model, workload: file, warmup: 0, requests: items.length, maxTokens: o.maxTokens, categories: [], cacheDir: o.cache }, (l) => process.stderr.write(`${l}\n`));
      const defaults = defaultConfig(process.env).lookahead;
      const variant = { decodingLength: defaults.decodingLength, branchLength: defaults.branchLength, layout: defaults.layout, sizing: 'adaptive' as const, cost: WIDE_MODEL_COST, recycled: false };
      for (const learnt of [false, true]) {
        const r = replayDrafts(corpus, variant, learnt ? documents : []);
        const row: ArmRow = { prompt, learnt, tokens_per_step: r.tokens / r.steps, modelled_speedup: r.plainMs / r.costMs };
        if (o.live) Object.assign(row, await liveArm(items, make, learnt, o, work));
        rows.push(row);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const lines = [
    `| prompt | embedded documents learnt | tokens/step (replay) | modelled speed-up |${o.live ? ' live tokens/step | live decode tok/s |' : ''}`,
    `|---|---|---|---|${o.live ? '---|---|' : ''}`,
    ...rows.map(
      (r) =>
        `| ${r.prompt} | ${r.learnt ? 'yes' : 'no'} | ${r.tokens_per_step.toFixed(3)} | ×${r.modelled_speedup.toFixed(3)} |` +
        (o.live ? ` ${r.live_tokens_per_step!.toFixed(3)} | ${r.decode_tokens_per_second!.toFixed(1)} |` : ''),
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (o.out) {
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, 'embed-learn.json'), JSON.stringify({ options: o, rows }, null, 2));
    writeFileSync(join(o.out, 'embed-learn.md'), `${lines.join('\n')}\n`);
  }
  return 0;
}

async function post(server: SpawnedServer, path: string, body: object): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new BenchError(`POST ${path}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

/** The global trie has taken all it was sent when its size stops changing (ingestion is sliced and not awaited). */
async function settled(server: SpawnedServer): Promise<number> {
  let last = -1;
  for (let same = 0; same < 3; ) {
    await new Promise((r) => setTimeout(r, 300));
    const stats = (await (await fetch(`${server.baseUrl}/lookahead/stats`)).json()) as { trie_nodes: { global: number } };
    same = stats.trie_nodes.global === last ? same + 1 : 0;
    last = stats.trie_nodes.global;
  }
  return last;
}

/** One arm on a server of its own (so it drafts from nothing another arm taught): embed the documents, then ask. */
async function liveArm(items: RagItem[], make: (x: RagItem, i: number) => string, learn: boolean, o: LearnOptions, work: string) {
  const embedDir = join(work, 'tiny-bert');
  if (!existsSync(join(embedDir, 'onnx', 'model.onnx'))) writeBertExport(embedDir, TINY_BERT);
  const flags = ['--embedding-model', embedDir, '--embedding-model-id', 'embed', ...(learn ? ['--learn-from-embeddings'] : [])];
  const server = await spawnServer({ model: o.model, extraArgs: flags, startupTimeoutMs: 300_000 });
  try {
    for (let i = 0; i < items.length; i += 32) await post(server, '/embeddings', { model: 'embed', input: items.slice(i, i + 32).map((x) => x.document) });
    process.stderr.write(`live (${learn ? 'learnt' : 'not learnt'}): global trie ${await settled(server)} nodes after embedding ${items.length} documents\n`);
    const modelId = ((await (await fetch(`${server.baseUrl}/models`)).json()) as { data: { id: string }[] }).data[0].id;
    let steps = 0;
    let tokens = 0;
    let decodeSeconds = 0;
    for (const [i, x] of items.entries()) {
      const res = (await post(server, '/chat/completions', {
        model: modelId,
        messages: [{ role: 'system', content: x.system }, { role: 'user', content: make(x, i) }],
        max_tokens: o.maxTokens,
        temperature: 0,
      })) as { usage: { completion_tokens: number }; lookahead: { steps: number; decode_seconds: number } };
      // The first token comes from the prefill; steps are the decode forwards after it.
      tokens += res.usage.completion_tokens - 1;
      steps += res.lookahead.steps;
      decodeSeconds += res.lookahead.decode_seconds;
    }
    return { live_tokens_per_step: tokens / Math.max(1, steps), decode_tokens_per_second: tokens / Math.max(1e-9, decodeSeconds) };
  } finally {
    await server.stop();
  }
}
