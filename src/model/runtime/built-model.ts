import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ContextLengthError, InvalidRequestError, ModelLoadError } from '../../errors.js';
import { META_FILE, MODEL_FILE, type BuildMeta } from '../builder/build.js';
import { io } from '../builder/llama-graph.js';
import type { ForwardInput, LoadedModel, ModelInfo, Sequence } from '../types.js';
import { KvCache } from './kv-cache.js';
import { checkForwardInput, fillCausalBias } from './mask.js';
import { createSession, Int64Buffer, type RuntimeOptions } from './session.js';

/** Opens a tree-layout model written by the builder (model.onnx + lookahead-model.json). */
export async function openBuiltModel(dir: string, options: RuntimeOptions = {}): Promise<LoadedModel> {
  const metaPath = join(dir, META_FILE);
  if (!existsSync(metaPath)) throw new ModelLoadError(`${dir} has no ${META_FILE}: not a model built by lookahead-proxy`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as BuildMeta;
  if (meta.options.layout !== 'tree') throw new ModelLoadError(`${dir} holds a ${meta.options.layout} export; open it with openForeignModel`);
  const c = meta.config;
  const { session, ep } = await createSession(join(dir, MODEL_FILE), options);
  const info: ModelInfo = {
    id: options.id ?? basename(dir),
    contextLength: Math.min(options.contextLength ?? c.maxPositions, c.maxPositions),
    vocabSize: c.vocabSize,
    bosTokenId: c.bosTokenId,
    eosTokenIds: c.eosTokenIds,
    treeMask: true,
    executionProvider: ep,
  };
  const rowSize = c.numKvHeads * c.headDim;
  const pool: SequenceBuffers[] = [];
  const take = () => pool.pop() ?? new SequenceBuffers(new KvCache(c.numLayers, rowSize, info.contextLength), info.vocabSize);
  const give = (b: SequenceBuffers) => {
    if (pool.length < POOLED_SEQUENCES) pool.push(b);
  };
  return {
    info,
    newSequence: () => new BuiltSequence(session, info, c.numLayers, rowSize, take(), give),
    dispose: () => session.release(),
  };
}

/** Forwards up to this many tokens (drafts) write their logits into the two small buffers. */
const SMALL_LOGITS_ROWS = 64;
/**
 * Buffers of ended sequences kept for the next ones. Every request opens a sequence: fresh KV caches and logits
 * (megabytes of external memory each) made V8 run a full mark-compact every few requests.
 */
const POOLED_SEQUENCES = 2;

/**
 * What a sequence writes into, reused by later sequences: the KV cache, two small logits buffers used in turn
 * (so a decode forward's logits stay valid through the next forward too: callers compare consecutive forwards),
 * and one that grows to the longest prefill chunk.
 */
class SequenceBuffers {
  private readonly small: Float32Array[];
  private turn = 0;
  private large = new Float32Array(0);

  constructor(
    readonly cache: KvCache,
    private readonly vocab: number,
  ) {
    this.small = [new Float32Array(SMALL_LOGITS_ROWS * vocab), new Float32Array(SMALL_LOGITS_ROWS * vocab)];
  }

  logits(rows: number): Float32Array {
    const n = rows * this.vocab;
    if (rows <= SMALL_LOGITS_ROWS) {
      this.turn ^= 1;
      return this.small[this.turn].subarray(0, n);
    }
    if (this.large.length < n) this.large = new Float32Array(n);
    return this.large.subarray(0, n);
  }
}

class BuiltSequence implements Sequence {
  length = 0;
  private readonly cache: KvCache;
  private disposed = false;
  private readonly ids = new Int64Buffer();
  private readonly positions = new Int64Buffer();
  private bias = new Float32Array(0);
  private readonly feeds: Record<string, ort.Tensor> = {};
  /** Per-layer I/O names, built once rather than as template strings on every forward. */
  private readonly names: { pastKey: string[]; pastValue: string[]; newKey: string[]; newValue: string[] };
  private readonly fetches: Record<string, ort.Tensor> = {};

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly info: ModelInfo,
    private readonly numLayers: number,
    private readonly rowSize: number,
    private readonly buffers: SequenceBuffers,
    private readonly release: (buffers: SequenceBuffers) => void,
  ) {
    this.cache = buffers.cache;
    const layers = Array.from({ length: numLayers }, (_, l) => l);
    this.names = { pastKey: layers.map(io.pastKey), pastValue: layers.map(io.pastValue), newKey: layers.map(io.newKey), newValue: layers.map(io.newValue) };
  }

  async forward({ tokens, positions, mask }: ForwardInput): Promise<Float32Array> {
    // Its buffers may already serve another sequence.
    if (this.disposed) throw new InvalidRequestError('forward on a disposed sequence');
    const past = this.length;
    const s = tokens.length;
    const total = past + s;
    checkForwardInput(tokens, positions, mask, past);
    if (total > this.info.contextLength) {
      throw new ContextLengthError(`sequence of ${total} tokens exceeds the context length of ${this.info.contextLength}`);
    }
    for (let i = 0; i < s; i++) {
      if (positions[i] < 0 || positions[i] >= this.info.contextLength) throw new InvalidRequestError(`position ${positions[i]} out of range`);
    }
    this.cache.reserve(total, past);
    if (!mask) {
      if (this.bias.length < s * total) this.bias = new Float32Array(Math.max(s * total, this.bias.length * 2));
      mask = fillCausalBias(this.bias, past, s);
    }
    const f = this.feeds;
    f[io.inputIds] = new ort.Tensor('int64', this.ids.view(tokens), [1, s]);
    f[io.positionIds] = new ort.Tensor('int64', this.positions.view(positions), [1, s]);
    f[io.bias] = new ort.Tensor('float32', mask, [1, 1, s, total]);
    const filled = past * this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      f[this.names.pastKey[l]] = new ort.Tensor('float32', this.cache.keys[l].subarray(0, filled), [1, past, this.rowSize]);
      f[this.names.pastValue[l]] = new ort.Tensor('float32', this.cache.values[l].subarray(0, filled), [1, past, this.rowSize]);
    }
    // Outputs go straight into buffers we own: the new K/V rows into the cache behind the past rows (no copy), the
    // logits into a reused buffer. Fresh output buffers every step cost a copy and put enough external memory
    // pressure on V8 for a scavenge every few dozen steps.
    const logits = this.buffers.logits(s);
    const o = this.fetches;
    o[io.logits] = new ort.Tensor('float32', logits, [1, s, this.info.vocabSize]);
    const end = total * this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      o[this.names.newKey[l]] = new ort.Tensor('float32', this.cache.keys[l].subarray(filled, end), [1, s, this.rowSize]);
      o[this.names.newValue[l]] = new ort.Tensor('float32', this.cache.values[l].subarray(filled, end), [1, s, this.rowSize]);
    }
    await this.session.run(f, o);
    this.length = total;
    return logits;
  }

  keep(base: number, rows: ArrayLike<number>): void {
    let prev = base - 1;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r <= prev || r >= this.length) throw new InvalidRequestError(`keep: row ${r} is not ascending within 0..${this.length - 1}`);
      prev = r;
      if (r !== base + i) this.cache.move(r, base + i);
    }
    this.length = base + rows.length;
  }

  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new InvalidRequestError(`truncate: ${length} outside 0..${this.length}`);
    this.length = length;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.length = 0;
    this.release(this.buffers);
  }
}
