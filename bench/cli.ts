/**
 * The load-test harness: `npm run bench -- <command> [flags]`. Every run is bounded in requests and time,
 * targets loopback unless told otherwise, and ends with a non-zero exit and one clear line when it cannot work.
 */
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildWideModel, defaultWideDir, resolveBenchModel } from './bench-model.js';
import { BenchError } from './errors.js';
import { FLAT_COST, greedyCorpus, parseCost, renderReplay, replayDrafts } from './draft-replay.js';
import type { DraftLayout } from '../src/lookahead/index.js';
import { DEFAULT_KS, forwardBatchCosts, forwardCostCurve, forwardCostCurves, renderBatchCosts, renderOutputComparison } from './forward-cost-command.js';
import { graphVsExport } from './graph-vs-export.js';
import { MAX_DURATION_S, MAX_REQUESTS } from './load.js';
import { machineInfo, newReport } from './report/build.js';
import { renderMarkdown } from './report/markdown.js';
import type { Report } from './report/schema.js';
import { writeReport } from './report/write.js';
import { runBench, type Arm, type BenchOptions } from './run.js';
import { renderSoak, runSoak, soakRssChart } from './soak.js';
import { renderStructured, runStructured } from './structured.js';
import type { GreedyAgreement } from './device-check.js';
import { loadWorkload, type ChatMessage, type WorkloadShape } from './workload.js';

const USAGE = `usage: npm run bench -- <command> [flags]

commands:
  load           drive a running server (--base-url URL), or start ours on --model: --workload FILE
                 (--requests N | --duration S) [--concurrency 1,4,16,64 | --rate R] [--lookahead off|hier|par|one]
  ab             fair A/B, lookahead off vs each layout: the same --requests N prompts for every arm at every
                 --concurrency level (default 1,4,8), blocks of <level> prompts sent to each arm in ABBA order,
                 one tenant per arm and level (each warmed by --warmup itself), paired per-prompt ratios with a
                 seeded bootstrap 95% CI. Starts our server on [--model PATH|wide150m]; against --base-url it
                 needs --tenant-keys K,K,... (one API key per arm and level) [--admin-key K]
                 [--layouts hier,par,one] --out DIR
  table          the README's bench table: ab off vs hier at 1/4/8 clients on chat-llama-5m and wide150m, rag-eval,
                 --warmup 16 --requests 24 --max-tokens 64 unless given [--workload FILE] [--out DIR: a report per
                 model and table.md]
  widen-model    build the 150M-cost benchmark model (chat-llama-5m widened by ../shared/tools/widen-model.mjs)
                 [--out DIR] (default ~/.cache/lookahead-proxy/bench/wide150m; kept when already built);
                 --model wide150m names it in ab and load
  forward-cost   per-forward cost curve of a model: [--model PATH | --vocab N (synthetic, e.g. 131072)]
                 [--ks 1,2,4,8,16,32,64] [--past 256] [--rounds 5] [--execution-provider EP]
                 [--compare-logits: also time the logits output + JS argmax scan, side by side]
                 [--batch 1,2,4,8: instead, one forwardBatch of b sequences × each k vs b separate forwards]
                 [--variants default|fp32,q8/b64/a4,q4/b32/a1/zp,... with --model HF_DIR: each dtype and
                 MatMulNBits setting (block size, accuracy level, zero points) built and timed round-robin]
  soak           long run with disconnects, server RSS timeline (exit 3 on a failure or RSS still climbing);
                 starts our server unless --base-url: [--model PATH] [--duration 600] [--clients 16]
                 [--abort-fraction 0.5] [--max-tokens 64] [--rss-interval 5 (s)] [--out DIR]
                 [--tenants N] [--document-every N] [--session-ids N]   (tenants, documents, sessions mixed in)
  peer-transformers  transformers.js vs our server, off and on: --model HF_DIR --peer-model STANDARD_ONNX_DIR
                 --workload FILE --requests N --out DIR
  device-check   which EPs load, then per model and GPU EP: greedy agreement with the CPU EP on short prompts and
                 on long RAG prompts (lookahead off and hier), forward sizes 1..2048 and trees vs the CPU EP, ms per
                 forward k=1..64, decode tok/s lookahead off vs hier, bytes moved host<->device per step, op placement:
                 [--models DIR,DIR] [--execution-providers webgpu,cuda] [--max-tokens 32] [--prompts N]
                 [--long-prompts FILE (rag-eval dev.jsonl)] [--long-count 8] [--long-min-chars 1200] [--ks ...]
                 [--rounds 3]
                 [--out DIR (device-check.json)]
  structured     json_schema extraction ({title, date, people[]}) from articles, lookahead off vs on interleaved,
                 in process: [--model PATH] --workload FILE (e.g. llma/cnndm.jsonl) [--requests 40]
                 [--max-tokens 160] [--decoding-length N] [--branch-length N] [--out DIR]
  embed-throughput  the local embedding model's inputs/s, in process: [--model EMBEDDING_DIR (default: a random
                 BERT of all-MiniLM-L6-v2's shape)] [--tokens 128] [--requests 512] [--threads N]
  embed-learn    what --learn-from-embeddings buys: rag-eval documents embedded first, then questions asked with
                 only a document id (and, for reference, with the document): tokens/step from draft-replay's
                 noise-free replay with and without the documents in the global trie; --live also runs each arm on
                 a server with/without the flag for decode tok/s: [--model PATH] --workload rag-eval/dev.jsonl
                 [--requests 24] [--max-tokens 64] [--cache DIR] [--live] [--out DIR]
  replicas       two replicas sharing tries through a redis-server it starts: sync lag under load, tokens per
                 step on B alone vs after A's answers, Redis memory: [--model PATH] --workload FILE
                 [--warmup 60] [--requests 16] [--concurrency 4] [--out DIR]
  graph-vs-export  plain greedy tokens/s through our graph vs a foreign export fed its present tensors:
                 --model FILE.gguf|HF_DIR --peer-model EXPORT_DIR [--max-tokens 256] [--rounds 6]
  peer-llamacpp  llama.cpp (node-llama-cpp) greedy, plain and with its prompt-lookup predictor, vs our engine
                 lookahead off and on; same GGUF, same prompt ids, interleaved: --model FILE.gguf
                 [--context-length N] [--workload FILE --requests N] [--max-tokens 128] [--rounds 3]
                 [--threads 1] [--lookahead hier|par|one] [--engine-model DIR] [--dtype q8] [--out DIR]
                 [--prompt-tokens 512,4096: one prompt of exactly each length, the prompts' ids repeated]
  draft-replay   offline: greedy answers of --model (cached in --cache DIR) for each of --workload A,B,...; the
                 first --warmup N (default 16) feed the global scopes, then drafting is replayed against the next
                 --requests N (default 24) held-out answers: tokens/step, draft nodes/step, accepted tokens by
                 source, estimated speed-up on --cost k:ms,... (default: the 150M-cost model's curve) and on
                 --flat-cost (default 1:1,64:1.1, a GPU) for each of --sizing adaptive,4,8,16,32,64
                 [--recycled on|off|on,off] [--max-tokens 128] [--decoding-length 64] [--branch-length 12]
                 [--layouts hier] [--category a,b] [--out DIR]
  quant-agreement  greedy agreement with our fp32 of our q8/q4 (symmetric and zero points) and llama.cpp's
                 F32/Q8_0/Q4_0/Q4_K GGUFs of the same weights: --model HF_DIR --workload FILE [--requests 50]
                 [--max-tokens 64] [--threads 2] [--no-llamacpp] [--out DIR (quant-agreement.json)]
  write-gguf     an HF Llama checkpoint (safetensors + byte-level BPE tokenizer) as a GGUF for llama.cpp:
                 --model HF_DIR --out FILE.gguf [--gguf-type F32|Q8_0|Q4_0|Q4_K (linear layers; embeddings stay F32)]
  shape-model    an HF checkpoint with the exact shape of a named model and seeded random weights (BF16), with the
                 family's vocabulary and chat template: --like qwen3-0.6b|qwen2.5-0.5b|llama-3.2-1b|smollm2-360m|
                 gemma-3-1b --out DIR [--seed N] [--yarn FACTOR: a YaRN long-context config, Qwen's recipe]

common flags:
  --workload FILE        JSONL of chat requests, or a shared dataset file (rag-eval, llma, spec-bench, *.buggy)
  --shape plain|sessions|repeat   multi-turn sessions over the same documents, or near-duplicate repeats
  --category a,b         spec-bench categories to keep (e.g. writing,roleplay: the open-ended control set)
  --repeat N             copies per query for --shape repeat (default 3)
  --warmup N             warm the global trie with the first N items, then measure the rest: by default the
                         model answers them first (the paper's protocol); --warmup-from references posts
                         their reference answers as documents instead
  --max-tokens N         per request (default 64)
  --seed N               seeds load's --rate arrivals and ab's bootstrap (default 1)
  --model-id ID          model name to request (default: the first in /v1/models)
  --request-timeout-ms N ceiling per request (default 120000)
  --max-error-rate F     exit 3 when more than this fraction of requests failed (default 0)
  --out DIR              write report.json, report.html, report.md there
  --allow-remote         permit a non-loopback --base-url
  --server-arg ARG       pass ARG to a spawned server (repeatable)
  --quiet                no progress on stderr`;

const FLAGS = {
  'base-url': { type: 'string' },
  model: { type: 'string' },
  'model-id': { type: 'string' },
  'api-key': { type: 'string' },
  'allow-remote': { type: 'boolean' },
  workload: { type: 'string' },
  shape: { type: 'string' },
  category: { type: 'string' },
  repeat: { type: 'string' },
  warmup: { type: 'string' },
  'warmup-from': { type: 'string' },
  requests: { type: 'string' },
  duration: { type: 'string' },
  concurrency: { type: 'string' },
  rate: { type: 'string' },
  seed: { type: 'string' },
  'max-tokens': { type: 'string' },
  rounds: { type: 'string' },
  layouts: { type: 'string' },
  lookahead: { type: 'string' },
  'decoding-length': { type: 'string' },
  'branch-length': { type: 'string' },
  out: { type: 'string' },
  'request-timeout-ms': { type: 'string' },
  'startup-timeout-s': { type: 'string' },
  'max-error-rate': { type: 'string' },
  'server-arg': { type: 'string', multiple: true },
  'tenant-keys': { type: 'string' },
  'admin-key': { type: 'string' },
  'forward-cost': { type: 'boolean' },
  'no-forward-cost': { type: 'boolean' },
  ks: { type: 'string' },
  past: { type: 'string' },
  vocab: { type: 'string' },
  models: { type: 'string' },
  'execution-providers': { type: 'string' },
  prompts: { type: 'string' },
  'long-prompts': { type: 'string' },
  'long-count': { type: 'string' },
  'long-min-chars': { type: 'string' },
  threads: { type: 'string' },
  tokens: { type: 'string' },
  'execution-provider': { type: 'string' },
  'compare-logits': { type: 'boolean' },
  batch: { type: 'string' },
  'peer-model': { type: 'string' },
  'gguf-type': { type: 'string' },
  'no-llamacpp': { type: 'boolean' },
  variants: { type: 'string' },
  'engine-model': { type: 'string' },
  dtype: { type: 'string' },
  'context-length': { type: 'string' },
  clients: { type: 'string' },
  'abort-fraction': { type: 'string' },
  tenants: { type: 'string' },
  'document-every': { type: 'string' },
  'session-ids': { type: 'string' },
  'rss-interval': { type: 'string' },
  sizing: { type: 'string' },
  cost: { type: 'string' },
  'flat-cost': { type: 'string' },
  recycled: { type: 'string' },
  cache: { type: 'string' },
  like: { type: 'string' },
  'prompt-tokens': { type: 'string' },
  yarn: { type: 'string' },
  quiet: { type: 'boolean' },
  live: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new BenchError(`${(err as Error).message} (see --help)`, 2);
  }
}

async function main(argv: string[]): Promise<number> {
  const { values: f, positionals } = parse(argv);
  const command = positionals[0];
  if (f.help || command === undefined || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !f.help ? 2 : 0;
  }
  if (positionals.length > 1) throw new BenchError(`unexpected argument ${JSON.stringify(positionals[1])} (see --help)`, 2);
  const commandLine = `npm run bench -- ${argv.join(' ')}`;
  switch (command) {
    case 'load':
      return loadCommand(f, commandLine);
    case 'ab':
      return abCommand(f, commandLine);
    case 'table':
      return tableCommand(f, commandLine);
    case 'widen-model': {
      const out = f.out ?? defaultWideDir();
      buildWideModel(out, (line) => process.stderr.write(`${line}\n`));
      process.stdout.write(`${out}\n`);
      return 0;
    }
    case 'forward-cost':
      return forwardCostCommand(f, commandLine);
    case 'peer-transformers':
      return peerCommand(f, commandLine);
    case 'soak':
      return soakCommand(f);
    case 'device-check':
      return deviceCheckCommand(f);
    case 'replicas':
      return replicasCommand(f);
    case 'graph-vs-export':
      return graphVsExportCommand(f);
    case 'peer-llamacpp':
      return peerLlamaCppCommand(f);
    case 'draft-replay':
      return draftReplayCommand(f, commandLine);
    case 'quant-agreement':
      return quantAgreementCommand(f);
    case 'embed-throughput': {
      const { embeddingThroughput } = await import('./embeddings.js');
      return embeddingThroughput({
        model: f.model ?? null,
        tokens: optInt(f.tokens, '--tokens', 3, 8192) ?? 128,
        inputs: optInt(f.requests, '--requests', 1, MAX_REQUESTS) ?? 512,
        threads: optInt(f.threads, '--threads', 1, 1024) ?? availableParallelism(),
      });
    }
    case 'embed-learn': {
      if (!f.workload) throw new BenchError('embed-learn needs --workload (rag-eval/dev.jsonl)', 2);
      const { learnFromEmbeddings } = await import('./embeddings.js');
      return learnFromEmbeddings({
        model: f.model ?? null,
        workload: f.workload,
        requests: optInt(f.requests, '--requests', 1, MAX_REQUESTS) ?? 24,
        maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 4096) ?? 64,
        out: f.out ?? null,
        cache: f.cache ?? join('bench', '.replay-cache'),
        live: f.live === true,
      });
    }
    case 'write-gguf': {
      if (!f.model || !f.out) throw new BenchError('write-gguf needs --model HF_DIR and --out FILE.gguf', 2);
      const { writeGgufFromHf, GGUF_WEIGHT_TYPES } = await import('./write-gguf.js');
      const type = f['gguf-type'] ?? 'F32';
      if (!GGUF_WEIGHT_TYPES.includes(type as never)) throw new BenchError(`--gguf-type must be one of ${GGUF_WEIGHT_TYPES.join(', ')} (got ${type})`, 2);
      writeGgufFromHf(f.model, f.out, type as (typeof GGUF_WEIGHT_TYPES)[number]);
      process.stderr.write(`wrote ${f.out}\n`);
      return 0;
    }
    case 'shape-model': {
      if (!f.like || !f.out) throw new BenchError('shape-model needs --like NAME and --out DIR', 2);
      const { writeShapeModel } = await import('./shape-model.js');
      const yarnFactor = optNum(f.yarn, '--yarn', 64) ?? undefined;
      const seed = optInt(f.seed, '--seed', 0, 2 ** 31) ?? undefined;
      const params = writeShapeModel(f.like, f.out, { yarnFactor, seed }, f.quiet ? undefined : (line) => process.stderr.write(`${line}\n`));
      process.stderr.write(`wrote ${f.out} (${(params / 1e6).toFixed(0)} M parameters)\n`);
      return 0;
    }
    default:
      throw new BenchError(`unknown command ${JSON.stringify(command)}; expected load, ab, table, widen-model, forward-cost, device-check, soak, replicas, embed-throughput, embed-learn, peer-transformers, peer-llamacpp, draft-replay, quant-agreement, write-gguf, shape-model or graph-vs-export`, 2);
  }
}

async function loadCommand(f: Flags, commandLine: string): Promise<number> {
  const common = measuredCommon(f);
  const requests = optInt(f.requests, '--requests', 1, MAX_REQUESTS);
  const durationS = optNum(f.duration, '--duration', MAX_DURATION_S);
  if (requests === null && durationS === null) throw new BenchError('give --requests N or --duration SECONDS: a run must end on its own', 2);
  if (f.layouts) throw new BenchError('--layouts is for ab; load takes --lookahead', 2);
  const rate = optNum(f.rate, '--rate', 10_000);
  if (rate !== null && f.concurrency) throw new BenchError('give --concurrency or --rate, not both', 2);
  // With --model and no --base-url, load starts our server on that model, as ab does.
  const spawn = f.model !== undefined && !f['base-url'];
  const options: BenchOptions = {
    ...common,
    command: commandLine,
    baseUrl: spawn ? null : (f['base-url'] ?? 'http://127.0.0.1:8000/v1'),
    modelPath: spawn ? benchModel(f) : null,
    apiKey: f['api-key'] ?? process.env.BENCH_API_KEY ?? null,
    requests,
    durationS,
    concurrency: rate !== null ? [] : intList(f.concurrency ?? '1', '--concurrency', 1024),
    rate,
    rounds: optInt(f.rounds, '--rounds', 1, 100) ?? 1,
    arm: loadArm(f.lookahead, draftingParams(f)),
    forwardCost: spawn && !f['no-forward-cost'] ? (path) => forwardCostCurve(path) : null,
  };
  const { report, failed, total } = await runBench(options);
  return finishMeasured(report, failed, total, f);
}

async function abCommand(f: Flags, commandLine: string): Promise<number> {
  const common = measuredCommon(f);
  for (const flag of ['duration', 'rate', 'rounds', 'lookahead'] as const) {
    if (f[flag] !== undefined) throw new BenchError(`--${flag} is for load; ab sends every arm the same --requests N prompts once per concurrency level, in ABBA order`, 2);
  }
  const prompts = optInt(f.requests, '--requests', 1, MAX_REQUESTS);
  if (prompts === null) throw new BenchError('ab needs --requests N: the number of prompts every arm answers at every level', 2);
  const spawn = !f['base-url'];
  if (spawn && f.model === undefined && !common.quiet) process.stderr.write('no --model: the spawned server uses its shipped default, chat-llama-5m\n');
  const { runAb } = await import('./ab.js');
  const { report, failed, total } = await runAb({
    ...common,
    command: commandLine,
    baseUrl: spawn ? null : f['base-url']!,
    modelPath: spawn ? benchModel(f) : null,
    tenantKeys: f['tenant-keys'] ? list(f['tenant-keys']) : null,
    adminKey: f['admin-key'] ?? process.env.BENCH_ADMIN_KEY ?? null,
    prompts,
    concurrency: intList(f.concurrency ?? '1,4,8', '--concurrency', 1024),
    arms: abArms(f.layouts ?? 'hier', draftingParams(f)),
    forwardCost: spawn && !f['no-forward-cost'] ? (path) => forwardCostCurve(path) : null,
  });
  return finishMeasured(report, failed, total, f);
}

/** The README's table: ab off vs hier on both models, with defaults sized to finish in minutes on 2 cores. */
async function tableCommand(f: Flags, commandLine: string): Promise<number> {
  if (f.model || f['base-url']) throw new BenchError('table runs both chat-llama-5m and wide150m on servers it starts; use ab for one model or server', 2);
  const common = measuredCommon({ ...f, workload: f.workload ?? join(import.meta.dirname, '../../shared/data/datasets/rag-eval/dev.jsonl') });
  const { runTable } = await import('./table.js');
  const { markdown, failed } = await runTable(
    {
      ...common,
      warmup: optInt(f.warmup, '--warmup', 0, MAX_REQUESTS) ?? 16,
      prompts: optInt(f.requests, '--requests', 1, MAX_REQUESTS) ?? 24,
      concurrency: intList(f.concurrency ?? '1,4,8', '--concurrency', 1024),
      arms: abArms('hier', draftingParams(f)),
      out: f.out ?? null,
      log: progressLog(f),
    },
    commandLine,
  );
  process.stdout.write(markdown);
  writeOut(f, { 'table.md': markdown });
  if (failed > 0) throw new BenchError(`${failed} requests failed; see the reports' errors columns`, 3);
  return 0;
}

/** Flags load and ab read alike. */
function measuredCommon(f: Flags) {
  if (!f.workload) throw new BenchError('--workload FILE is required', 2);
  const shape = (f.shape ?? 'plain') as WorkloadShape;
  if (!['plain', 'sessions', 'repeat'].includes(shape)) throw new BenchError(`--shape must be plain, sessions or repeat (got ${shape})`, 2);
  return {
    modelId: f['model-id'] ?? null,
    serverArgs: f['server-arg'] ?? [],
    allowRemote: f['allow-remote'] ?? false,
    workload: f.workload,
    shape,
    categories: list(f.category),
    repeat: optInt(f.repeat, '--repeat', 1, 100) ?? 3,
    warmup: optInt(f.warmup, '--warmup', 0, MAX_REQUESTS) ?? 0,
    warmupFrom: warmupFromOf(f['warmup-from']),
    seed: optInt(f.seed, '--seed', 0, 2 ** 31) ?? 1,
    maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 32_768) ?? 64,
    requestTimeoutMs: optInt(f['request-timeout-ms'], '--request-timeout-ms', 100, 3_600_000) ?? 120_000,
    startupTimeoutMs: (optInt(f['startup-timeout-s'], '--startup-timeout-s', 1, 3600) ?? 300) * 1000,
    quiet: f.quiet ?? false,
  };
}

/** Progress lines on stderr, unless --quiet. */
function progressLog(f: Flags): (line: string) => void {
  return f.quiet ? () => {} : (line) => process.stderr.write(`${line}\n`);
}

/** Writes each file (name → content) into --out, when given. */
function writeOut(f: Flags, files: Record<string, string>): void {
  if (!f.out) return;
  mkdirSync(f.out, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(f.out, name), content);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** `--model wide150m` is the benchmark model, built on first use; anything else goes to the server as given. */
function benchModel(f: Flags): string | null {
  return resolveBenchModel(f.model ?? null, progressLog(f));
}

function finishMeasured(report: Report, failed: number, total: number, f: Flags): number {
  const maxErrorRate = optNum(f['max-error-rate'], '--max-error-rate', 1) ?? 0;
  emit(report, f.out);
  if (total > 0 && failed / total > maxErrorRate) {
    const kinds = [...new Set(report.runs.flatMap((r) => Object.keys(r.errors)))].join(', ');
    throw new BenchError(`${failed} of ${total} requests failed (${kinds}); see the errors column`, 3);
  }
  return 0;
}

async function structuredCommand(f: Flags, commandLine: string): Promise<number> {
  if (!f.workload) throw new BenchError('--workload FILE is required', 2);
  const drafting = draftingParams(f);
  const result = await runStructured(
    {
      model: f.model ?? null,
      workload: f.workload,
      requests: optInt(f.requests, '--requests', 1, MAX_REQUESTS) ?? 40,
      maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 2048) ?? 160,
      lookahead: { enabled: true, layout: 'hier', decodingLength: drafting.decoding_length ?? 16, branchLength: drafting.branch_length ?? 8 },
    },
    progressLog(f),
  );
  const markdown = renderStructured(result, commandLine);
  process.stdout.write(markdown);
  writeOut(f, { 'structured.json': json({ command: commandLine, machine: machineInfo(), ...result }), 'structured.md': markdown });
  return 0;
}

async function draftReplayCommand(f: Flags, commandLine: string): Promise<number> {
  const workloads = list(f.workload);
  if (workloads.length === 0) throw new BenchError('--workload FILE[,FILE...] is required', 2);
  const drafting = draftingParams(f);
  const sizings = list(f.sizing ?? 'adaptive,4,8,16,32,64').map((s): 'adaptive' | number => (s === 'adaptive' ? s : (optInt(s, '--sizing', 1, 256) as number)));
  const recycledArms = list(f.recycled ?? 'on');
  for (const a of recycledArms) if (a !== 'on' && a !== 'off') throw new BenchError(`--recycled: expected on, off or on,off (got ${JSON.stringify(a)})`, 2);
  const layouts = list(f.layouts ?? 'hier');
  for (const n of layouts) if (!LAYOUTS.includes(n)) throw new BenchError(`--layouts: unknown layout ${JSON.stringify(n)}; expected hier, par, one`, 2);
  const cost = parseCost(f.cost);
  const flat = parseCost(f['flat-cost'], FLAT_COST);
  const rows = [];
  for (const workload of workloads) {
    const corpus = await greedyCorpus(
      {
        model: f.model ?? null,
        workload,
        warmup: optInt(f.warmup, '--warmup', 0, MAX_REQUESTS) ?? 16,
        requests: optInt(f.requests, '--requests', 1, MAX_REQUESTS) ?? 24,
        maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 2048) ?? 128,
        categories: list(f.category),
        cacheDir: f.cache ?? join('bench', '.replay-cache'),
      },
      progressLog(f),
    );
    for (const layout of layouts) {
      for (const arm of recycledArms) {
        for (const sizing of sizings) {
          const variant = { decodingLength: drafting.decoding_length ?? 64, branchLength: drafting.branch_length ?? 12, layout: layout as DraftLayout, sizing, cost, recycled: arm === 'on' };
          const name = `${layout} ${sizing}${recycledArms.length > 1 ? ` recycled ${arm}` : ''}`;
          rows.push({ workload, variant: name, r: replayDrafts(corpus, variant) });
          // Adaptive sizes depend on the curve: the flat curve's own choice too.
          if (sizing === 'adaptive') rows.push({ workload, variant: `${name} (sized flat)`, r: replayDrafts(corpus, { ...variant, cost: flat }) });
        }
      }
    }
  }
  const markdown = renderReplay(rows, commandLine, flat);
  process.stdout.write(`${markdown}\n`);
  writeOut(f, { 'draft-replay.json': json({ command: commandLine, rows }), 'draft-replay.md': markdown });
  return 0;
}

async function forwardCostCommand(f: Flags, commandLine: string): Promise<number> {
  const ks = f.ks ? intList(f.ks, '--ks', 4096) : DEFAULT_KS;
  if (f.variants) return nbitsCostCommand(f, ks);
  const vocab = optInt(f.vocab, '--vocab', 2, 1 << 20) ?? undefined;
  const opts = {
    ks,
    past: optInt(f.past, '--past', 0, 1 << 20) ?? 256,
    vocab,
    executionProvider: f['execution-provider'],
    rounds: optInt(f.rounds, '--rounds', 1, 1000) ?? 5,
  };
  if (f.batch) {
    const bs = intList(f.batch, '--batch', 64);
    process.stdout.write(renderBatchCosts(await forwardBatchCosts(f.model ?? null, bs, opts)));
    return 0;
  }
  const curves = await forwardCostCurves(f.model ?? null, { ...opts, outputs: f['compare-logits'] ? ['ids', 'logits'] : ['ids'] });
  const curve = curves.ids!.map(({ k, ms }) => ({ k, ms }));
  if (f['compare-logits']) process.stdout.write(renderOutputComparison(curves) + '\n');
  const report = newReport({
    kind: 'forward-cost',
    command: commandLine,
    model: { id: vocab ? `synthetic-vocab-${vocab}` : (f.model ?? 'chat-llama-5m'), path: vocab ? null : (f.model ?? null) },
    config: {
      base_url: null,
      server: 'in-process',
      workload: { path: '', shape: 'plain', items: 0, warmup_items: 0, warmup_applied: null, reused_items: false },
      requests: null,
      duration_s: null,
      max_tokens: 1,
      concurrency: [],
      rounds: 1,
      labels: [],
    },
    runs: [],
    ratios: [],
    forward_cost: curve,
    peer: null,
    ab: null,
    server_stats: null,
  });
  emit(report, f.out);
  return 0;
}

async function peerCommand(f: Flags, commandLine: string): Promise<number> {
  if (!f.model || !f['peer-model'] || !f.workload) throw new BenchError('peer-transformers needs --model HF_DIR, --peer-model STANDARD_ONNX_DIR and --workload FILE', 2);
  // Loaded on demand: transformers.js is an optional dev dependency and slow to import.
  const { runPeerComparison } = await import('./peer/command.js');
  const layout = f.lookahead ?? 'hier';
  if (!LAYOUTS.includes(layout)) throw new BenchError(`--lookahead must be hier, par or one for peer-transformers (got ${layout})`, 2);
  const report = await runPeerComparison({
    command: commandLine,
    modelPath: f.model,
    peerModel: f['peer-model'],
    workload: f.workload,
    categories: list(f.category),
    requests: optInt(f.requests, '--requests', 1, 10_000) ?? 8,
    maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 32_768) ?? 64,
    layout,
    seed: optInt(f.seed, '--seed', 0, 2 ** 31) ?? 1,
    requestTimeoutMs: optInt(f['request-timeout-ms'], '--request-timeout-ms', 100, 3_600_000) ?? 120_000,
    startupTimeoutMs: (optInt(f['startup-timeout-s'], '--startup-timeout-s', 1, 3600) ?? 300) * 1000,
    quiet: f.quiet ?? false,
  });
  emit(report, f.out);
  return 0;
}

const DEVICE_CHECK_LONG_PROMPTS = join(import.meta.dirname, '../../shared/data/datasets/rag-eval/dev.jsonl');
/** What the sweep of forward sizes allows between an EP and the CPU EP, in logprobs (as the WebGPU tests). */
const SWEEP_TOLERANCE = 1e-3;
const DEVICE_CHECK_PROMPTS = [
  'Tell me a short story about a lighthouse keeper.',
  'What is the capital of France, and why is it famous?',
  'Explain what a cache is to a child.',
  'Write three tips for staying focused.',
];

async function deviceCheckCommand(f: Flags): Promise<number> {
  const { runDeviceCheck, renderDeviceCheck } = await import('./device-check.js');
  const models = list(f.models ?? f.model ?? join(import.meta.dirname, '../../shared/data/models/chat-llama-5m'));
  const eps = list(f['execution-providers'] ?? 'webgpu,cuda');
  for (const ep of eps) if (!['cpu', 'webgpu', 'cuda'].includes(ep)) throw new BenchError(`--execution-providers: unknown ${JSON.stringify(ep)}; expected cpu, webgpu, cuda`, 2);
  const result = await runDeviceCheck({
    models,
    executionProviders: eps as ('cpu' | 'webgpu' | 'cuda')[],
    prompts: DEVICE_CHECK_PROMPTS.slice(0, optInt(f.prompts, '--prompts', 1, DEVICE_CHECK_PROMPTS.length) ?? 2),
    longPrompts: longPrompts(
      f['long-prompts'] ?? DEVICE_CHECK_LONG_PROMPTS,
      optInt(f['long-count'], '--long-count', 0, 1000) ?? 8,
      optInt(f['long-min-chars'], '--long-min-chars', 0, 1_000_000) ?? 1200,
    ),
    maxTokens: optInt(f['max-tokens'], '--max-tokens', 2, 4096) ?? 32,
    ks: f.ks ? intList(f.ks, '--ks', 4096) : DEFAULT_KS,
    rounds: optInt(f.rounds, '--rounds', 1, 100) ?? 3,
    threads: optInt(f.threads, '--threads', 1, 256) ?? 2,
    log: f.quiet ? () => {} : (m) => process.stderr.write(`device-check: ${m}\n`),
  });
  writeOut(f, { 'device-check.json': json(result) });
  process.stdout.write(renderDeviceCheck(result));
  const identical = (a: GreedyAgreement) => a.identical === a.tokens;
  const disagree = result.checks.some(
    (c) =>
      !identical(c.agreement) ||
      !identical(c.longAgreement.off) ||
      !identical(c.longAgreement.hier) ||
      [...(c.sweep?.prompts ?? []), ...(c.sweep?.trees ?? [])].some((r) => !r.top1Equal || r.maxLogprobDelta > SWEEP_TOLERANCE),
  );
  return disagree ? 1 : 0;
}

/** The device check's RAG prompts: the first `count` rag-eval chats of at least `minChars` (1200: ~300 tokens). */
function longPrompts(path: string, count: number, minChars: number): ChatMessage[][] {
  if (count === 0) return [];
  if (!existsSync(path)) {
    process.stderr.write(`device-check: no long prompts (${path} is absent; give --long-prompts FILE)\n`);
    return [];
  }
  const chars = (m: ChatMessage[]) => m.reduce((n, x) => n + x.content.length, 0);
  return loadWorkload(path, { shape: 'plain', categories: [], repeat: 1 })
    .map((w) => w.messages)
    .filter((m) => chars(m) >= minChars)
    .slice(0, count);
}

async function graphVsExportCommand(f: Flags): Promise<number> {
  if (!f.model || !f['peer-model']) throw new BenchError('graph-vs-export needs --model FILE.gguf|HF_DIR and --peer-model EXPORT_DIR', 2);
  const tokens = optInt(f['max-tokens'], '--max-tokens', 1, 32_768) ?? 256;
  const r = await graphVsExport(f.model, f['peer-model'], { tokens, rounds: optInt(f.rounds, '--rounds', 1, 100) ?? 6 });
  process.stdout.write(
    `| graph | greedy tok/s | × export |\n|---|---:|---:|\n` +
      `| ours (JS-owned KV, new rows only) | ${r.ours.tokensPerSecond.toFixed(1)} | ${r.ratio.toFixed(2)} |\n` +
      `| foreign export (present fed back) | ${r.export.tokensPerSecond.toFixed(1)} | 1.00 |\n\n` +
      `${tokens} tokens × ${r.rounds} rounds each, interleaved; greedy outputs ${r.identical ? 'identical' : 'DIFFER'}\n`,
  );
  return r.identical ? 0 : 1;
}

/** Story openings for completion models (stories260K): repetitive enough for prompt lookup to find something. */
const STORY_PROMPTS = [
  'Once upon a time, there was a little girl named Lily. Lily liked to play in the park. One day, Lily',
  'Tom and his dog went to the park. Tom threw the ball and the dog ran after the ball. Then Tom',
  'There was a big red ball in the garden. The cat saw the ball and the cat wanted to play with the ball.',
  'Sue had a toy car. She liked her toy car very much. One day, her toy car',
];

async function peerLlamaCppCommand(f: Flags): Promise<number> {
  if (!f.model || !f.model.toLowerCase().endsWith('.gguf')) throw new BenchError('peer-llamacpp needs --model FILE.gguf (both engines load it)', 2);
  const layout = f.lookahead ?? 'hier';
  if (!LAYOUTS.includes(layout)) throw new BenchError(`--lookahead must be hier, par or one for peer-llamacpp (got ${layout})`, 2);
  const requests = optInt(f.requests, '--requests', 1, 1000) ?? 4;
  const prompts = f.workload
    ? loadWorkload(f.workload, { shape: 'plain', categories: list(f.category), repeat: 1 }).slice(0, requests).map((i) => ({ messages: i.messages }))
    : STORY_PROMPTS.map((text) => ({ text }));
  // Loaded on demand: node-llama-cpp is a dev dependency.
  const { runLlamaCppPeer, renderLlamaCppPeer, decodeChart } = await import('./peer/llamacpp.js');
  const result = await runLlamaCppPeer({
    model: f.model,
    engineModel: f['engine-model'] ?? null,
    dtype: f.dtype ?? null,
    contextLength: optInt(f['context-length'], '--context-length', 16, 1 << 20),
    prompts,
    promptTokens: f['prompt-tokens'] ? intList(f['prompt-tokens'], '--prompt-tokens', 1 << 20) : null,
    maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 32_768) ?? 128,
    rounds: optInt(f.rounds, '--rounds', 1, 100) ?? 3,
    threads: optInt(f.threads, '--threads', 1, 256) ?? 1,
    layout: layout as 'hier' | 'par' | 'one',
    seed: optInt(f.seed, '--seed', 0, 2 ** 31) ?? 1,
    log: progressLog(f),
  });
  writeOut(f, { 'peer-llamacpp.json': json(result), 'decode-vs-context.svg': decodeChart(result) });
  process.stdout.write(`${renderLlamaCppPeer(result)}\n`);
  return 0;
}

async function quantAgreementCommand(f: Flags): Promise<number> {
  if (!f.model || !f.workload) throw new BenchError('quant-agreement needs --model HF_DIR and --workload FILE', 2);
  const requests = optInt(f.requests, '--requests', 1, 10_000) ?? 50;
  const maxTokens = optInt(f['max-tokens'], '--max-tokens', 1, 4096) ?? 64;
  const { loadTokenizer } = await import('../src/model/load.js');
  const tokenizer = await loadTokenizer(f.model);
  const prompts = loadWorkload(f.workload, { shape: 'plain', categories: list(f.category), repeat: 1 })
    .slice(0, requests)
    .map((i) => tokenizer.encode(tokenizer.renderChat(i.messages), { addSpecialTokens: !tokenizer.chatTemplateAddsBos }));
  const { runQuantAgreement, renderQuantAgreement } = await import('./quant-agreement.js');
  const result = await runQuantAgreement({
    model: f.model,
    prompts,
    maxTokens,
    threads: optInt(f.threads, '--threads', 1, 256) ?? 2,
    llamaCpp: !f['no-llamacpp'],
    log: progressLog(f),
  });
  writeOut(f, { 'quant-agreement.json': json(result) });
  process.stdout.write(renderQuantAgreement(result));
  return 0;
}

async function nbitsCostCommand(f: Flags, ks: number[]): Promise<number> {
  if (!f.model) throw new BenchError('forward-cost --variants needs --model HF_DIR (each variant is built from it)', 2);
  const { DEFAULT_VARIANTS, parseVariant, renderNBitsCost, runNBitsCost } = await import('./nbits-cost.js');
  const variants = (f.variants === 'default' ? DEFAULT_VARIANTS : f.variants!).split(',').map(parseVariant);
  const curves = await runNBitsCost(f.model, variants, {
    ks,
    past: optInt(f.past, '--past', 0, 1 << 20) ?? 256,
    rounds: optInt(f.rounds, '--rounds', 1, 1000) ?? 3,
    threads: optInt(f.threads, '--threads', 1, 256) ?? 2,
    log: progressLog(f),
  });
  writeOut(f, { 'forward-cost-variants.json': json(curves) });
  process.stdout.write(renderNBitsCost(curves));
  return 0;
}

async function soakCommand(f: Flags): Promise<number> {
  const result = await runSoak({
    baseUrl: f['base-url'] ?? null,
    modelPath: f.model ?? null,
    serverArgs: f['server-arg'] ?? [],
    apiKey: f['api-key'] ?? process.env.BENCH_API_KEY ?? null,
    allowRemote: f['allow-remote'] ?? false,
    durationS: optNum(f.duration, '--duration', MAX_DURATION_S) ?? 600,
    clients: optInt(f.clients, '--clients', 1, 1024) ?? 16,
    abortFraction: optNum(f['abort-fraction'], '--abort-fraction', 1) ?? 0.5,
    maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 32_768) ?? 64,
    seed: optInt(f.seed, '--seed', 0, 2 ** 31) ?? 1,
    startupTimeoutMs: (optInt(f['startup-timeout-s'], '--startup-timeout-s', 1, 3600) ?? 300) * 1000,
    quiet: f.quiet ?? false,
    tenants: optInt(f.tenants, '--tenants', 0, 10_000) ?? 0,
    documentEvery: optInt(f['document-every'], '--document-every', 0, 1_000_000) ?? 0,
    sessionIds: optInt(f['session-ids'], '--session-ids', 0, 10_000_000) ?? 0,
    rssIntervalS: optNum(f['rss-interval'], '--rss-interval', 3600) ?? 5,
  });
  writeOut(f, { 'soak.json': json(result), 'soak.md': renderSoak(result), 'soak-rss.svg': soakRssChart(result) });
  process.stdout.write(renderSoak(result));
  return result.failed > 0 || result.after.running !== 0 || result.after.queued !== 0 || result.rss.flattened === false ? 3 : 0;
}

async function replicasCommand(f: Flags): Promise<number> {
  if (!f.workload) throw new BenchError('replicas needs --workload FILE', 2);
  const { runReplicas } = await import('./replicas.js');
  const result = await runReplicas({
    modelPath: f.model ?? null,
    workload: f.workload,
    warmup: optInt(f.warmup, '--warmup', 1, MAX_REQUESTS) ?? 60,
    measured: optInt(f.requests, '--requests', 1, MAX_REQUESTS) ?? 16,
    concurrency: optInt(f.concurrency, '--concurrency', 1, 256) ?? 4,
    maxTokens: optInt(f['max-tokens'], '--max-tokens', 1, 1_000_000) ?? 64,
    startupTimeoutMs: (optInt(f['startup-timeout-s'], '--startup-timeout-s', 1, 3600) ?? 600) * 1000,
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeOut(f, { 'replicas.json': json(result) });
  return 0;
}

function warmupFromOf(value: string | undefined): 'answers' | 'references' {
  if (value === undefined || value === 'answers' || value === 'references') return value ?? 'answers';
  throw new BenchError(`--warmup-from must be answers or references (got ${value})`, 2);
}

function emit(report: Report, out: string | undefined): void {
  if (out) {
    const paths = writeReport(out, report);
    process.stderr.write(`wrote ${paths.json}, ${paths.html}, ${paths.md}\n`);
  }
  process.stdout.write(renderMarkdown(report));
}

function draftingParams(f: Flags): Record<string, number> {
  const out: Record<string, number> = {};
  const d = optInt(f['decoding-length'], '--decoding-length', 1, 256);
  const b = optInt(f['branch-length'], '--branch-length', 1, 64);
  if (d !== null) out.decoding_length = d;
  if (b !== null) out.branch_length = b;
  return out;
}

const LAYOUTS = ['hier', 'par', 'one'];

function abArms(layouts: string, drafting: Record<string, number>): Arm[] {
  const names = list(layouts);
  for (const n of names) if (!LAYOUTS.includes(n)) throw new BenchError(`--layouts: unknown layout ${JSON.stringify(n)}; expected hier, par, one`, 2);
  if (names.length === 0) throw new BenchError('--layouts needs at least one layout', 2);
  return [{ label: 'off', lookahead: { enabled: false } }, ...names.map((layout) => ({ label: layout, lookahead: { enabled: true, layout, ...drafting } }))];
}

function loadArm(mode: string | undefined, drafting: Record<string, number>): Arm {
  if (mode === undefined) return { label: 'default', lookahead: null };
  if (mode === 'off') return { label: 'off', lookahead: { enabled: false } };
  if (LAYOUTS.includes(mode)) return { label: mode, lookahead: { enabled: true, layout: mode, ...drafting } };
  throw new BenchError(`--lookahead must be off, hier, par or one (got ${mode})`, 2);
}

function list(s: string | undefined): string[] {
  return (s ?? '').split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function intList(s: string, flag: string, max: number): number[] {
  const out = list(s).map((x) => Number(x));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1 || n > max)) throw new BenchError(`${flag} must be a comma-separated list of integers 1..${max} (got ${s})`, 2);
  return out;
}

function optInt(s: string | undefined, flag: string, min: number, max: number): number | null {
  if (s === undefined) return null;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) throw new BenchError(`${flag} must be an integer in ${min}..${max} (got ${s})`, 2);
  return n;
}

function optNum(s: string | undefined, flag: string, max: number): number | null {
  if (s === undefined) return null;
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0 || n > max || (flag !== '--max-error-rate' && n === 0)) throw new BenchError(`${flag} must be a number in (0, ${max}] (got ${s})`, 2);
  return n;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof BenchError) {
      process.stderr.write(`bench: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`bench: unexpected failure: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
