import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../../errors.js';
import type { Pooling } from './pooling.js';

type Json = Record<string, unknown>;

/** What a sentence-transformers ONNX directory says about itself (all-MiniLM-L6-v2's layout). */
export interface EmbeddingExport {
  modelPath: string;
  tokenizerJson: Json;
  tokenizerConfig: Json;
  pooling: Pooling;
  dimensions: number;
  /** Tokens one input is cut to, [CLS] and [SEP] included (sentence-transformers truncates rather than refuses). */
  maxTokens: number;
}

/** Where exports put the graph: Optimum and transformers.js under onnx/, older ones beside the tokenizer. */
const GRAPH_PATHS = ['onnx/model.onnx', 'model.onnx'];

export function readEmbeddingExport(dir: string): EmbeddingExport {
  const modelPath = GRAPH_PATHS.map((p) => join(dir, p)).find((p) => existsSync(p));
  if (!modelPath) throw new ModelLoadError(`embedding model ${dir}: no ONNX graph (looked for ${GRAPH_PATHS.join(', ')})`);
  const config = readJson(dir, 'config.json') ?? {};
  const poolingConfig = readJson(dir, '1_Pooling/config.json');
  const sbert = readJson(dir, 'sentence_bert_config.json');
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json') ?? {};
  const tokenizerJson = readJson(dir, 'tokenizer.json');
  if (!tokenizerJson) throw new ModelLoadError(`embedding model ${dir}: tokenizer.json not found`);

  const pooling = poolingOf(poolingConfig, dir);
  const dimensions = num(poolingConfig?.word_embedding_dimension) ?? num(config.hidden_size);
  if (!dimensions) throw new ModelLoadError(`embedding model ${dir}: neither 1_Pooling/config.json nor config.json gives the embedding size`);
  // model_max_length is often a huge placeholder; the position table bounds what the graph can take anyway.
  const limits = [num(sbert?.max_seq_length), num(tokenizerConfig.model_max_length), num(config.max_position_embeddings)].filter((n): n is number => n !== null && n > 2);
  const maxTokens = limits.length > 0 ? Math.min(...limits) : 512;
  return { modelPath, tokenizerJson, tokenizerConfig, pooling, dimensions, maxTokens };
}

/** sentence-transformers' pooling modes this server implements; no pooling config means mean pooling, its default. */
function poolingOf(config: Json | null, dir: string): Pooling {
  if (!config) return 'mean';
  const modes = Object.entries(config).filter(([k, v]) => k.startsWith('pooling_mode_') && v === true).map(([k]) => k.slice('pooling_mode_'.length));
  if (modes.length === 1 && modes[0] === 'mean_tokens') return 'mean';
  if (modes.length === 1 && modes[0] === 'cls_token') return 'cls';
  throw new ModelLoadError(`embedding model ${dir}: pooling ${modes.join(' + ') || '(none)'} in 1_Pooling/config.json is not supported; mean_tokens or cls_token are`);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function readJson(dir: string, name: string): Json | null {
  const path = join(dir, name);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (err) {
    throw new ModelLoadError(`embedding model: ${path} is not valid JSON (${(err as Error).message})`);
  }
}
