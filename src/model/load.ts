/**
 * Model resolution: turns what the user named (nothing, a .gguf file, an HF directory, a directory we built, or a
 * foreign ONNX export) into a loaded model and its tokenizer.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelLoadError } from '../errors.js';
import { META_FILE, MODEL_FILE } from './builder/build.js';
import { ensureBuilt } from './builder/cache.js';
import type { BuildOptions } from './builder/options.js';
import { openGguf } from './builder/sources/gguf/index.js';
import { openHfDir } from './builder/sources/hf-dir.js';
import { SyntheticSource, syntheticConfig } from './builder/sources/synthetic.js';
import { withContextLength, type WeightSource } from './builder/source.js';
import { openBuiltModel } from './runtime/built-model.js';
import { openForeignModel } from './runtime/foreign-model.js';
import { resolveExecutionProvider, type ExecutionProvider, type ExecutionProviderChoice } from './runtime/session.js';
import { ByteTokenizer } from './tokenizer/byte-tokenizer.js';
import { createGgufTokenizer } from './tokenizer/gguf-tokenizer.js';
import { loadHfTokenizer } from './tokenizer/hf-tokenizer.js';
import type { TextTokenizer } from './tokenizer/types.js';
import type { LoadedModel } from './types.js';

/** The `--model` value naming the embedded synthetic model: noise output, but no files at all (tests use it). */
export const SYNTHETIC_MODEL = 'builtin:synthetic';
export const SYNTHETIC_MODEL_ID = 'lookahead-default-synthetic';
/** What a first `npm start` serves with no model configured: a real (tiny) chat model shipped in the repository. */
export const SHIPPED_MODEL_ID = 'chat-llama-5m';

/** `models/chat-llama-5m` at the package root, found from this file whether it runs from src/ or dist/src/. */
export function shippedModelDir(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) {
      const model = join(dir, 'models', SHIPPED_MODEL_ID);
      return existsSync(join(model, 'config.json')) ? model : null;
    }
    dir = dirname(dir);
  }
  return null;
}

/** Written beside a graph built from a source without tokenizer.json, saying where its tokenizer lives. */
export const TOKENIZER_SOURCE_FILE = 'tokenizer-source.json';
export type TokenizerSource = { kind: 'gguf'; path: string } | { kind: 'byte' };

/** The embedded default: small enough to build in a second, big enough to exercise every code path. */
export function defaultModelSource(): WeightSource {
  const tok = new ByteTokenizer();
  return new SyntheticSource(
    syntheticConfig({
      hiddenSize: 256,
      numLayers: 4,
      numHeads: 8,
      numKvHeads: 4,
      vocabSize: tok.vocabSize,
      bosTokenId: tok.bosTokenId,
      eosTokenIds: [...tok.eosTokenIds],
    }),
    2024,
  );
}

export type ModelKind = 'synthetic' | 'gguf' | 'hf' | 'built' | 'foreign';

export interface ResolvedModel {
  kind: ModelKind;
  path: string | null;
  id: string;
}

/** null = the shipped chat model (or the synthetic one where the package was installed without it). */
export function resolveModel(spec: string | null, id?: string): ResolvedModel {
  if (spec === null) {
    const shipped = shippedModelDir();
    return shipped ? { kind: 'hf', path: shipped, id: id ?? SHIPPED_MODEL_ID } : { kind: 'synthetic', path: null, id: id ?? SYNTHETIC_MODEL_ID };
  }
  if (spec === SYNTHETIC_MODEL) return { kind: 'synthetic', path: null, id: id ?? SYNTHETIC_MODEL_ID };
  const path = resolve(spec);
  if (!existsSync(path)) throw new ModelLoadError(`model not found: ${spec} (expected a .gguf file or a model directory)`);
  const name = id ?? basename(path).replace(/\.(gguf|onnx)$/i, '');
  if (statSync(path).isFile()) {
    if (extname(path).toLowerCase() === '.gguf') return { kind: 'gguf', path, id: name };
    if (extname(path).toLowerCase() === '.onnx') return { kind: 'foreign', path, id: name };
    throw new ModelLoadError(`${spec}: not a .gguf or .onnx file`);
  }
  if (existsSync(join(path, META_FILE))) return { kind: 'built', path, id: name };
  const files = readdirSync(path);
  if (files.includes('config.json') && files.some((f) => f.endsWith('.safetensors') || f === 'model.safetensors.index.json')) {
    return { kind: 'hf', path, id: name };
  }
  if (files.includes(MODEL_FILE)) return { kind: 'foreign', path: join(path, MODEL_FILE), id: name };
  throw new ModelLoadError(
    `${spec}: no model found (looked for config.json + *.safetensors, ${META_FILE}, or ${MODEL_FILE})`,
  );
}

export interface LoadOptions {
  /** A path (HF dir, .gguf, built dir, foreign ONNX dir), SYNTHETIC_MODEL, or null for the shipped default. */
  model: string | null;
  /** Name the model is served under; defaults to the directory/file name. */
  modelId?: string;
  contextLength?: number;
  cacheDir: string;
  threads: number;
  executionProvider: ExecutionProviderChoice;
  dtype: BuildOptions['dtype'];
}

/** Builds (or finds in the cache) the tree-capable graph and opens it; foreign exports open as chain-only. */
export async function loadModel(options: LoadOptions, log: (message: string) => void): Promise<LoadedModel> {
  const resolved = resolveModel(options.model, options.modelId);
  const ep = await resolveExecutionProvider(options.executionProvider, log);
  const runtime = {
    id: resolved.id,
    threads: options.threads,
    executionProvider: ep,
    contextLength: options.contextLength,
    log,
  };
  if (resolved.kind === 'foreign') {
    log(`${resolved.path}: foreign ONNX export, verifying single-branch drafts only (no tree mask input)`);
    return openForeignModel(dirname(resolved.path!), runtime);
  }
  if (resolved.kind === 'built') return openBuiltModel(resolved.path!, runtime);
  const source = weightSource(resolved, options.contextLength);
  if (options.model === null) {
    log(resolved.kind === 'synthetic'
      ? 'no model configured: serving the embedded synthetic default, whose output is noise. '
      : `no model configured: serving the shipped ${SHIPPED_MODEL_ID}, a 5M-parameter test model (weak answers, research/testing terms). `);
    log('Serve a real model with `npm start -- --model <hf-dir|file.gguf|org/name>`.');
  } else if (resolved.kind === 'synthetic') {
    log('serving the embedded synthetic model, whose output is noise.');
  }
  const dir = await ensureBuilt(source, treeBuildOptions(ep, options.dtype), join(options.cacheDir, 'models'), log);
  return openBuiltModel(dir, runtime);
}

/**
 * The tree graph each provider runs best. WebGPU: attention as MatMul + Softmax (its MultiHeadAttention is wrong
 * from 32 query rows, ONNX Attention falls back to the CPU, GroupQueryAttention fails) and K/V kept on the device. CPU: attention whose rows are bit-exact whatever shares
 * their forward, so lookahead stays lossless on q8/q4 (see exactAttention). CUDA: onnxruntime-node 1.30 binds device outputs only to
 * WebGPU buffers, so the K/V stays host-owned there until the binding can leave outputs in CUDA memory.
 */
export function treeBuildOptions(ep: ExecutionProvider, dtype: BuildOptions['dtype']): BuildOptions {
  if (ep === 'webgpu') return { dtype, attention: 'matmul', layout: 'tree', kv: 'device' };
  return { dtype, attention: ep === 'cpu' ? 'exact' : 'onnx', layout: 'tree' };
}

export function weightSource(resolved: ResolvedModel, contextLength: number | undefined): WeightSource {
  switch (resolved.kind) {
    case 'synthetic':
      return defaultModelSource();
    case 'gguf':
      return withContextLength(openGguf(resolved.path!), contextLength);
    default:
      return withContextLength(openHfDir(resolved.path!), contextLength);
  }
}

/** The tokenizer that goes with a model; loaded on whichever thread needs it (cheap next to the model). */
export async function loadTokenizer(spec: string | null): Promise<TextTokenizer> {
  const resolved = resolveModel(spec);
  switch (resolved.kind) {
    case 'synthetic':
      return new ByteTokenizer();
    case 'gguf':
      return createGgufTokenizer(openGguf(resolved.path!).metadata);
    case 'foreign': {
      const dir = resolve(resolved.path!, '..');
      if (!existsSync(join(dir, 'tokenizer.json'))) {
        throw new ModelLoadError(`${dir}: a foreign ONNX export needs tokenizer.json beside model.onnx`);
      }
      return loadHfTokenizer(dir);
    }
    case 'built':
      return builtTokenizer(resolved.path!);
    default:
      return loadHfTokenizer(resolved.path!);
  }
}

function builtTokenizer(dir: string): TextTokenizer {
  if (existsSync(join(dir, 'tokenizer.json'))) return loadHfTokenizer(dir);
  const file = join(dir, TOKENIZER_SOURCE_FILE);
  if (!existsSync(file)) {
    throw new ModelLoadError(`${dir}: no tokenizer.json or ${TOKENIZER_SOURCE_FILE}; rebuild it with \`npm run cli -- build-model\``);
  }
  const source = JSON.parse(readFileSync(file, 'utf8')) as TokenizerSource;
  return source.kind === 'gguf' ? createGgufTokenizer(openGguf(source.path).metadata) : new ByteTokenizer();
}
