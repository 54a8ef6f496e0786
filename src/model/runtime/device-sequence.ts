import * as ort from 'onnxruntime-node';
import { InvalidRequestError } from '../../errors.js';
import { io } from '../builder/llama-graph.js';
import type { ForwardInput, KvResidency, ModelInfo, Sequence, TransferCounters } from '../types.js';
import { HeadRows } from './head-rows.js';
import { toInt32 } from './host-sequence.js';
import { checkKeep, layerNames, newTransferCounters, StepFeeds } from './step-feeds.js';

/** Where ORT is asked to leave the present K/V: device memory of the session's EP. */
export const DEVICE_LOCATION = 'gpu-buffer';

/** The session option that keeps every present K/V output on the device. */
export function deviceOutputLocations(numLayers: number): Record<string, ort.Tensor.DataLocation> {
  const out: Record<string, ort.Tensor.DataLocation> = {};
  for (let l = 0; l < numLayers; l++) {
    out[io.presentKey(l)] = DEVICE_LOCATION;
    out[io.presentValue(l)] = DEVICE_LOCATION;
  }
  return out;
}

/**
 * A GPU EP's sequence: the K/V is the graph's `present` output, left in device memory and fed back as the next
 * forward's past, for the sequence's whole life. `keep`/`truncate` only edit the list of rows to keep; the next
 * forward gathers them on the device (`kv_keep`). Per step only ids, positions, bias and that list go up, and the
 * greedy ids (or, when asked for, the logits) come down.
 */
export class DeviceSequence implements Sequence {
  length = 0;
  readonly transfers: TransferCounters = newTransferCounters();
  private disposed = false;
  private readonly step: StepFeeds;
  private readonly feeds: Record<string, ort.Tensor> = {};
  private readonly past: { key: string[]; value: string[] };
  private readonly present: { key: string[]; value: string[] };
  /** Per layer K then V: the device tensors of the last forward (empty host tensors before the first). */
  private kv: ort.Tensor[];
  /** Rows of `kv` that make up the sequence, in order: [0, length) is valid. */
  private readonly order: Int32Array;
  private readonly keepIds: BigInt64Array;
  private readonly fetches: string[];
  /** logits_rows: 0 for a greedy step, the head's rows when the logits are wanted. */
  private readonly logitsRows = new BigInt64Array(1);
  private readonly head: HeadRows;
  private ids = new Int32Array(64);
  private top = new Int32Array(0);
  private topRows = 0;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly info: ModelInfo,
    private readonly numLayers: number,
    rowSize: number,
  ) {
    this.step = new StepFeeds(info);
    this.past = layerNames(numLayers, io.pastKey, io.pastValue);
    this.present = layerNames(numLayers, io.presentKey, io.presentValue);
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, 0, rowSize]);
    this.kv = new Array<ort.Tensor>(2 * numLayers).fill(empty);
    this.order = new Int32Array(info.contextLength);
    this.keepIds = new BigInt64Array(info.contextLength);
    // Every output, every run (see headOutputs).
    this.fetches = [...this.present.key, ...this.present.value, io.logits, io.nextIds, ...(info.topIds ? [io.nextTop] : [])];
    this.head = new HeadRows(session.inputNames.includes(io.headRows));
  }

  async forward(input: ForwardInput): Promise<Float32Array> {
    return (await this.run(input, true))[io.logits].data as Float32Array;
  }

  /** The best ids come down with every run (the binding fetches every output): `top` only says they are wanted. */
  async forwardIds(input: ForwardInput, top = false): Promise<Int32Array> {
    const out = await this.run(input, false);
    const raw = out[io.nextIds].data as BigInt64Array;
    if (this.ids.length < raw.length) this.ids = new Int32Array(raw.length);
    if (top && this.info.topIds) {
      const best = out[io.nextTop].data as BigInt64Array;
      if (this.top.length < best.length) this.top = new Int32Array(Math.max(best.length, 2 * this.top.length));
      toInt32(best, this.top.subarray(0, best.length));
      this.topRows = best.length;
    }
    return toInt32(raw, this.ids.subarray(0, raw.length));
  }

  topIds(): Int32Array {
    return this.top.subarray(0, this.topRows);
  }

  private async run(input: ForwardInput, logits: boolean): Promise<ort.InferenceSession.ReturnType> {
    if (this.disposed) throw new InvalidRequestError('forward on a disposed sequence');
    const past = this.length;
    const f = this.feeds;
    const inBytes = this.step.write(input, past, f);
    for (let i = 0; i < past; i++) this.keepIds[i] = BigInt(this.order[i]);
    f[io.kvKeep] = new ort.Tensor('int64', this.keepIds.subarray(0, past), [past]);
    const rows = input.tokens.length - this.head.writeLone(input, f);
    this.logitsRows[0] = BigInt(logits ? rows : 0);
    f[io.logitsRows] = new ort.Tensor('int64', this.logitsRows, [1]);
    for (let l = 0; l < this.numLayers; l++) {
      f[this.past.key[l]] = this.kv[2 * l];
      f[this.past.value[l]] = this.kv[2 * l + 1];
    }
    const out = await this.session.run(f, this.fetches);
    this.releaseKv();
    for (let l = 0; l < this.numLayers; l++) {
      this.kv[2 * l] = out[this.present.key[l]];
      this.kv[2 * l + 1] = out[this.present.value[l]];
    }
    this.length = past + input.tokens.length;
    for (let i = 0; i < this.length; i++) this.order[i] = i;
    this.transfers.hostToDevice += inBytes + 8 * past + 8;
    this.transfers.deviceToHost += (out[io.logits].data as Float32Array).byteLength + (out[io.nextIds].data as BigInt64Array).byteLength;
    if (this.info.topIds) this.transfers.deviceToHost += (out[io.nextTop].data as BigInt64Array).byteLength;
    return out;
  }

  keep(base: number, rows: ArrayLike<number>): void {
    checkKeep(base, rows, this.length);
    // rows[i] >= base + i, so writing front to back never overwrites an entry still to be read.
    for (let i = 0; i < rows.length; i++) this.order[base + i] = this.order[rows[i]];
    this.length = base + rows.length;
  }

  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new InvalidRequestError(`truncate: ${length} outside 0..${this.length}`);
    this.length = length;
  }

  residency(): KvResidency {
    return { locations: this.kv.map((t) => t.location), hostBytes: 0 };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.length = 0;
    this.releaseKv();
  }

  /** Frees the device buffers of the last forward's K/V (ORT-allocated, so never collected by V8 alone). */
  private releaseKv(): void {
    for (const t of this.kv) if (t.location === DEVICE_LOCATION) t.dispose();
  }
}
