import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ContextLengthError, InvalidRequestError, ModelLoadError } from '../../errors.js';
import type { ForwardInput, KvResidency, LoadedModel, ModelInfo, Sequence, TransferCounters } from '../types.js';
import { checkForwardInput, isCausalBias } from './mask.js';
import { createSession, Int64Buffer, type RuntimeOptions } from './session.js';
import { forwardEach } from './forward-each.js';
import { newTransferCounters } from './step-feeds.js';

const PAST = /^past_key_values\.(\d+)\.key$/;

function looksForeign(inputs: readonly string[]): boolean {
  return inputs.includes('attention_mask') && inputs.some((n) => PAST.test(n));
}

/** Whether an ONNX file is an HF Optimum / onnx-community decoder export (2-D attention_mask + past_key_values.*). */
export async function isForeignExport(onnxPath: string): Promise<boolean> {
  const session = await ort.InferenceSession.create(onnxPath, { graphOptimizationLevel: 'disabled' });
  try {
    return looksForeign(session.inputNames);
  } finally {
    await session.release();
  }
}

interface ForeignShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  hasPositions: boolean;
}

/**
 * Opens a foreign decoder export from `dir` (model.onnx, or onnx/model.onnx). Such graphs take a 2-D padding mask
 * and build the causal mask inside, so only chain drafts can be verified (info.treeMask = false), and the KV cache
 * is the graph's own `present.*` fed back as past.
 */
export async function openForeignModel(dir: string, options: RuntimeOptions = {}): Promise<LoadedModel> {
  const path = [join(dir, 'model.onnx'), join(dir, 'onnx', 'model.onnx')].find(existsSync);
  if (!path) throw new ModelLoadError(`no model.onnx in ${dir}`);
  const { session, ep } = await createSession(path, options);
  if (!looksForeign(session.inputNames)) {
    await session.release();
    throw new ModelLoadError(`${path} is not a decoder export with attention_mask and past_key_values inputs`);
  }
  const cfg = readConfig(dirname(path));
  const layers = session.inputNames.filter((n) => PAST.test(n)).length;
  const meta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
  const dims = meta && meta.isTensor ? meta.shape : [];
  const num = (v: unknown, fallback: unknown) => (typeof v === 'number' && v > 0 ? v : Number(fallback));
  const shape: ForeignShape = {
    layers,
    kvHeads: num(dims[1], cfg.num_key_value_heads ?? cfg.num_attention_heads),
    headDim: num(dims[3], cfg.head_dim ?? Number(cfg.hidden_size) / Number(cfg.num_attention_heads)),
    hasPositions: session.inputNames.includes('position_ids'),
  };
  if (!Number.isFinite(shape.kvHeads) || !Number.isFinite(shape.headDim)) {
    throw new ModelLoadError(`cannot tell the KV shape of ${path}: no static dims and no config.json`);
  }
  const vocab = session.outputMetadata.find((m) => m.name === 'logits');
  const maxPositions = Number(cfg.max_position_embeddings ?? 2048);
  const eos = cfg.eos_token_id;
  const info: ModelInfo = {
    id: options.id ?? basename(dir),
    contextLength: Math.min(options.contextLength ?? maxPositions, maxPositions),
    vocabSize: num(vocab && vocab.isTensor ? vocab.shape[2] : undefined, cfg.vocab_size),
    bosTokenId: typeof cfg.bos_token_id === 'number' ? cfg.bos_token_id : null,
    eosTokenIds: Array.isArray(eos) ? eos : typeof eos === 'number' ? [eos] : [],
    treeMask: false,
    executionProvider: ep,
    kvPlacement: 'host',
    kvBytesPerToken: 2 * shape.layers * shape.kvHeads * shape.headDim * 4,
    maxBatch: 1,
  };
  return {
    info,
    newSequence: () => new ForeignSequence(session, info, shape),
    forwardBatch: forwardEach,
    dispose: () => session.release(),
  };
}

/** config.json (HF) or io_config.json next to the graph or one folder up. */
function readConfig(dir: string): Record<string, unknown> {
  for (const d of [dir, dirname(dir)]) {
    for (const f of ['config.json', 'io_config.json']) {
      const p = join(d, f);
      if (existsSync(p)) return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    }
  }
  return {};
}

class ForeignSequence implements Sequence {
  length = 0;
  readonly transfers: TransferCounters = newTransferCounters();
  private present: ort.Tensor[] = [];
  private nextIds = new Int32Array(64);
  private readonly ids = new Int64Buffer();
  private readonly positions = new Int64Buffer();
  private readonly ones = new Int64Buffer();

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly info: ModelInfo,
    private readonly shape: ForeignShape,
  ) {}

  async forward({ tokens, positions, mask }: ForwardInput): Promise<Float32Array> {
    const past = this.length;
    const s = tokens.length;
    const total = past + s;
    checkForwardInput(tokens, positions, mask, past);
    if (mask && !isCausalBias(mask, past, s)) {
      throw new InvalidRequestError('this model is a foreign export: it can only verify chain drafts (causal mask)');
    }
    if (total > this.info.contextLength) {
      throw new ContextLengthError(`sequence of ${total} tokens exceeds the context length of ${this.info.contextLength}`);
    }
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', this.ids.view(tokens), [1, s]),
      attention_mask: new ort.Tensor('int64', this.ones.fill(1, total), [1, total]),
    };
    if (this.shape.hasPositions) feeds.position_ids = new ort.Tensor('int64', this.positions.view(positions), [1, s]);
    for (let l = 0; l < this.shape.layers; l++) {
      feeds[`past_key_values.${l}.key`] = this.past(2 * l, past);
      feeds[`past_key_values.${l}.value`] = this.past(2 * l + 1, past);
    }
    const out = await this.session.run(feeds);
    this.present = [];
    for (let l = 0; l < this.shape.layers; l++) this.present.push(out[`present.${l}.key`], out[`present.${l}.value`]);
    this.length = total;
    const logits = out.logits.data as Float32Array;
    if (this.info.executionProvider !== 'cpu') {
      // Every output comes back to the host; the past went up whole.
      const kvBytes = this.present.reduce((n, t) => n + (t.data as Float32Array).byteLength, 0);
      this.transfers.hostToDevice += (kvBytes * past) / total + 16 * s + 8 * total;
      this.transfers.deviceToHost += kvBytes + logits.byteLength;
    }
    return logits;
  }

  /** This export has no in-graph argmax: the ids are taken from the logits here. */
  async forwardIds(input: ForwardInput): Promise<Int32Array> {
    const logits = await this.forward(input);
    const vocab = this.info.vocabSize;
    const rows = logits.length / vocab;
    if (this.nextIds.length < rows) this.nextIds = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = r * vocab;
      for (let i = best + 1; i < (r + 1) * vocab; i++) if (logits[i] > logits[best]) best = i;
      this.nextIds[r] = best - r * vocab;
    }
    return this.nextIds.subarray(0, rows);
  }

  residency(): KvResidency {
    return { locations: this.present.map((t) => t.location), hostBytes: this.present.reduce((n, t) => n + (t.data as Float32Array).byteLength, 0) };
  }

  /** The first `rows` positions of a present tensor [1, kvH, T, hd]; a copy only after a truncation. */
  private past(i: number, rows: number): ort.Tensor {
    const { kvHeads, headDim } = this.shape;
    const t = this.present[i];
    if (!t) return new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
    const have = t.dims[2];
    if (have === rows) return t;
    const src = t.data as Float32Array;
    const dst = new Float32Array(kvHeads * rows * headDim);
    for (let h = 0; h < kvHeads; h++) dst.set(src.subarray(h * have * headDim, (h * have + rows) * headDim), h * rows * headDim);
    return new ort.Tensor('float32', dst, [1, kvHeads, rows, headDim]);
  }

  keep(base: number, rows: ArrayLike<number>): void {
    for (let i = 0; i < rows.length; i++) {
      if (rows[i] !== base + i) throw new InvalidRequestError('foreign exports keep only chain prefixes (rows must be base, base+1, ...)');
    }
    this.truncate(base + rows.length);
  }

  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new InvalidRequestError(`truncate: ${length} outside 0..${this.length}`);
    this.length = length;
    if (length === 0) this.present = [];
  }

  dispose(): void {
    this.present = [];
    this.length = 0;
  }
}
