import * as ort from 'onnxruntime-node';
import { InvalidRequestError } from '../../errors.js';
import { io } from '../builder/llama-graph.js';
import type { ForwardInput, KvResidency, ModelInfo, Sequence, TransferCounters } from '../types.js';
import { HeadRows } from './head-rows.js';
import { KvCache } from './kv-cache.js';
import { OutputBuffers } from './output-buffers.js';
import { checkKeep, layerNames, newTransferCounters, StepFeeds } from './step-feeds.js';

/** A sequence's output buffers and its own KV cache, reused by later sequences. */
export class SequenceBuffers extends OutputBuffers {
  constructor(
    readonly cache: KvCache,
    vocab: number,
  ) {
    super(vocab);
  }
}

/**
 * The CPU EP's sequence: K/V in JS-owned buffers. The filled prefix goes in as zero-copy views and ORT writes the
 * new rows straight behind it, so `keep` is a few row copies. On a GPU EP the same path works but uploads the
 * whole past every step (counted in `transfers`).
 */
export class HostSequence implements Sequence {
  length = 0;
  readonly transfers: TransferCounters = newTransferCounters();
  private readonly cache: KvCache;
  private disposed = false;
  private readonly step: StepFeeds;
  private readonly feeds: Record<string, ort.Tensor> = {};
  private readonly fetches: Record<string, ort.Tensor> = {};
  private readonly past: { key: string[]; value: string[] };
  private readonly fresh: { key: string[]; value: string[] };
  private readonly head: HeadRows;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly info: ModelInfo,
    private readonly numLayers: number,
    private readonly rowSize: number,
    private readonly buffers: SequenceBuffers,
    private readonly release: (buffers: SequenceBuffers) => void,
  ) {
    this.cache = buffers.cache;
    this.step = new StepFeeds(info);
    this.past = layerNames(numLayers, io.pastKey, io.pastValue);
    this.fresh = layerNames(numLayers, io.newKey, io.newValue);
    this.head = new HeadRows(session.inputNames.includes(io.headRows));
  }

  async forward(input: ForwardInput): Promise<Float32Array> {
    const h = input.tokens.length - this.head.writeLone(input, this.feeds);
    const logits = this.buffers.logits(h);
    await this.run(input, io.logits, new ort.Tensor('float32', logits, [1, h, this.info.vocabSize]));
    return logits;
  }

  async forwardIds(input: ForwardInput, top = false): Promise<Int32Array> {
    const h = input.tokens.length - this.head.writeLone(input, this.feeds);
    const { raw, ids } = this.buffers.nextIds(h);
    const k = top ? (this.info.topIds ?? 0) : 0;
    const best = k > 0 ? this.buffers.topIds(h, k) : null;
    await this.run(input, io.nextIds, new ort.Tensor('int64', raw, [1, h]), best ? new ort.Tensor('int64', best.raw, [1, h, k]) : null);
    if (best) toInt32(best.raw, best.ids);
    return toInt32(raw, ids);
  }

  topIds(): Int32Array {
    return this.buffers.lastTop;
  }

  private async run(input: ForwardInput, outName: string, out: ort.Tensor, top: ort.Tensor | null = null): Promise<void> {
    // Its buffers may already serve another sequence.
    if (this.disposed) throw new InvalidRequestError('forward on a disposed sequence');
    const past = this.length;
    const s = input.tokens.length;
    const total = past + s;
    const f = this.feeds;
    const inBytes = this.step.write(input, past, f);
    this.cache.reserve(total, past);
    const filled = past * this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      f[this.past.key[l]] = new ort.Tensor('float32', this.cache.keys[l].subarray(0, filled), [1, past, this.rowSize]);
      f[this.past.value[l]] = new ort.Tensor('float32', this.cache.values[l].subarray(0, filled), [1, past, this.rowSize]);
    }
    // Outputs go straight into buffers we own: the new K/V rows into the cache behind the past rows (no copy), the
    // logits or ids into a reused buffer. Fresh output buffers every step cost a copy and put enough external
    // memory pressure on V8 for a scavenge every few dozen steps. Only the asked-for output is fetched.
    const o = this.fetches;
    delete o[io.logits];
    delete o[io.nextIds];
    delete o[io.nextTop];
    o[outName] = out;
    if (top) o[io.nextTop] = top;
    const end = total * this.rowSize;
    for (let l = 0; l < this.numLayers; l++) {
      o[this.fresh.key[l]] = new ort.Tensor('float32', this.cache.keys[l].subarray(filled, end), [1, s, this.rowSize]);
      o[this.fresh.value[l]] = new ort.Tensor('float32', this.cache.values[l].subarray(filled, end), [1, s, this.rowSize]);
    }
    await this.session.run(f, o);
    this.length = total;
    if (this.info.executionProvider !== 'cpu') {
      const kvRow = 2 * this.numLayers * this.rowSize * 4;
      this.transfers.hostToDevice += inBytes + past * kvRow;
      this.transfers.deviceToHost += (out.data as ArrayBufferView).byteLength + (top ? (top.data as ArrayBufferView).byteLength : 0) + s * kvRow;
    }
  }

  keep(base: number, rows: ArrayLike<number>): void {
    checkKeep(base, rows, this.length);
    for (let i = 0; i < rows.length; i++) if (rows[i] !== base + i) this.cache.move(rows[i], base + i);
    this.length = base + rows.length;
  }

  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new InvalidRequestError(`truncate: ${length} outside 0..${this.length}`);
    this.length = length;
  }

  residency(): KvResidency {
    const bytes = (a: Float32Array[]) => a.reduce((n, x) => n + x.byteLength, 0);
    return { locations: new Array<string>(2 * this.numLayers).fill('cpu'), hostBytes: bytes(this.cache.keys) + bytes(this.cache.values) };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.length = 0;
    this.release(this.buffers);
  }
}

/** Token ids fit int32; callers index with them. */
export function toInt32(from: BigInt64Array, to: Int32Array): Int32Array {
  for (let i = 0; i < from.length; i++) to[i] = Number(from[i]);
  return to;
}
