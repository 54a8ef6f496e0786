import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../types.js';
import { buildLlamaGraph, IR_VERSION, isBatched, OPSETS } from './llama-graph.js';
import { BUILDER_VERSION, EXTERNAL_DATA_THRESHOLD, LONE_GRAPH_MAX_BYTES, type BuildOptions } from './options.js';
import type { WeightSource } from './source.js';
import { buildStandardGraph, hfConfig } from './standard-graph.js';

export const MODEL_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx.data';
export const META_FILE = 'lookahead-model.json';
/**
 * A small batched model's second graph: the same decoder with one slot, which the runtime runs for forwards of a
 * single sequence (see LONE_GRAPH_MAX_BYTES). Its ops are those of the batched graph's lone branch, so a sequence's
 * rows are the same whichever graph ran them.
 */
export const LONE_FILE = 'lone.onnx';

/** What lookahead-model.json holds: enough for the runtime to open the graph without the weight source. */
export interface BuildMeta {
  builderVersion: number;
  source: string;
  config: LlamaConfig;
  options: BuildOptions;
  externalData: boolean;
}

export type BuildLogger = (message: string) => void;

/** Writes model.onnx (+ model.onnx.data, or lone.onnx) and lookahead-model.json into outDir. */
export async function buildModel(source: WeightSource, options: BuildOptions, outDir: string, log: BuildLogger = () => {}): Promise<BuildMeta> {
  mkdirSync(outDir, { recursive: true });
  const c = source.config;
  const bytes = estimateWeightBytes(c, options);
  const externalData = options.externalData ?? bytes > EXTERNAL_DATA_THRESHOLD;
  log(`building ${options.layout} ONNX graph (${options.dtype}, attention ${options.attention}, ~${(bytes / 2 ** 20).toFixed(0)} MiB of weights${externalData ? ', external data' : ''}) in ${outDir}`);
  const started = Date.now();
  const external = externalData ? { path: join(outDir, DATA_FILE), location: DATA_FILE, minBytes: 1024 } : null;
  const graph = options.layout === 'standard' ? buildStandardGraph(source, options, external) : buildLlamaGraph(source, options, external);
  const header = { irVersion: IR_VERSION, opsets: OPSETS, producer: 'lookahead-proxy', producerVersion: String(BUILDER_VERSION) };
  graph.write(join(outDir, MODEL_FILE), header);
  if (options.layout === 'tree' && isBatched(options) && !graph.usesExternalData && bytes <= LONE_GRAPH_MAX_BYTES) {
    buildLlamaGraph(source, options, null, 1).write(join(outDir, LONE_FILE), header);
  }
  const meta: BuildMeta = { builderVersion: BUILDER_VERSION, source: source.cacheKey, config: c, options, externalData: graph.usesExternalData };
  if (options.layout === 'standard') writeFileSync(join(outDir, 'config.json'), JSON.stringify(hfConfig(c), null, 2));
  writeFileSync(join(outDir, META_FILE), JSON.stringify(meta, null, 2));
  log(`built ONNX graph in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return meta;
}

/** Weights of one decoder layer's projections and MLP (what a token multiplies by in each layer). */
export function layerWeights(c: LlamaConfig): number {
  return c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
}

/** Bytes of weights the graph will hold, for choosing external data before anything is written. */
export function estimateWeightBytes(c: LlamaConfig, options: BuildOptions): number {
  const perLayer = layerWeights(c);
  const bytesPerWeight = { fp32: 4, fp16: 2, q8: 1.125, q4: 0.625 }[options.dtype];
  const embed = c.vocabSize * c.hiddenSize * 4;
  // A tied head is the embedding itself, except under q8/q4, which add a quantized copy (llama-graph.ts lmHead).
  const quantized = options.dtype === 'q8' || options.dtype === 'q4';
  const head = c.tiedEmbeddings && !quantized ? 0 : c.vocabSize * c.hiddenSize * bytesPerWeight;
  return c.numLayers * perLayer * bytesPerWeight + embed + head;
}
