import * as ort from 'onnxruntime-node';
import { InvalidRequestError } from '../../errors.js';
import { oldPastRows } from '../builder/attention.js';
import { BATCH_SLOTS, io } from '../builder/llama-graph.js';
import type { BatchItem, ForwardInput, KvResidency, LlamaConfig, LoadedModel, ModelInfo, Sequence, TransferCounters } from '../types.js';
import { BatchFeeds, type BatchRow } from './batch-feeds.js';
import { HeadRows } from './head-rows.js';
import { toInt32 } from './host-sequence.js';
import { KvSlab, type SlabRegion } from './kv-slab.js';
import { OutputBuffers } from './output-buffers.js';
import { checkKeep, checkStep, layerNames, newTransferCounters } from './step-feeds.js';

/** Output buffers of ended sequences kept for the next ones (logits buffers are megabytes each). */
const POOLED_OUTPUTS = 2;

/**
 * A batched tree graph (builder's isBatched) on the host: each sequence's K/V lives in a region of the KvSlab, and
 * `forwardBatch` runs any set of sequences in one ORT run. A sequence's own forward is the batch of one, through
 * the same graph (or the lone graph, build.ts LONE_FILE, whose ops are those of its lone branch), so batched and
 * alone results are the same computation on the same key layout.
 */
export function openSlabModel(session: ort.InferenceSession, lone: ort.InferenceSession | null, info: ModelInfo, c: LlamaConfig): LoadedModel {
  const runner = new BatchRunner(session, lone, info, c);
  return {
    info,
    newSequence: () => runner.newSequence(),
    forwardBatch: (items) => runner.run(items),
    dispose: async () => {
      await session.release();
      await lone?.release();
    },
  };
}

/** What a sequence that never fetched top ids hands out. */
const NO_TOP = new Int32Array(0);

class SlabSequence implements Sequence {
  length = 0;
  readonly transfers: TransferCounters = newTransferCounters();
  region: SlabRegion | null = null;
  disposed = false;
  /** The run that last claimed this sequence: a batch must not hold it twice. */
  claim = 0;

  constructor(
    readonly runner: BatchRunner,
    /** Where its forwards' results go; null once settled. */
    public out: OutputBuffers | null,
  ) {}

  async forward(input: ForwardInput): Promise<Float32Array> {
    return (await this.runner.run([{ seq: this, input, output: 'logits' }]))[0] as Float32Array;
  }

  async forwardIds(input: ForwardInput, top = false): Promise<Int32Array> {
    return (await this.runner.run([{ seq: this, input, output: 'ids', top }]))[0] as Int32Array;
  }

  topIds(): Int32Array {
    return this.out?.lastTop ?? NO_TOP;
  }

  keep(base: number, rows: ArrayLike<number>): void {
    checkKeep(base, rows, this.length);
    const region = this.region;
    if (region) for (let i = 0; i < rows.length; i++) if (rows[i] !== base + i) this.runner.slab.copyRows(region, rows[i], region, base + i, 1);
    this.length = base + rows.length;
  }

  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new InvalidRequestError(`truncate: ${length} outside 0..${this.length}`);
    this.length = length;
  }

  settle(): void {
    this.runner.settle(this);
  }

  reserve(rows: number): void {
    this.runner.reserveExact(this, rows);
  }

  fork(rows: number, room = rows): SlabSequence {
    if (this.disposed) throw new InvalidRequestError('fork of a disposed sequence');
    if (!Number.isInteger(rows) || rows < 0 || rows > this.length) throw new InvalidRequestError(`fork: ${rows} rows outside 0..${this.length}`);
    return this.runner.fork(this, rows, room);
  }

  residency(): KvResidency {
    return { locations: new Array<string>(2 * this.runner.slab.numLayers).fill('cpu'), hostBytes: (this.region?.rows ?? 0) * this.runner.info.kvBytesPerToken };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.length = 0;
    this.runner.release(this);
  }
}

class BatchRunner {
  readonly slab: KvSlab;
  private readonly feeds: BatchFeeds;
  private readonly f: Record<string, ort.Tensor> = {};
  /** The lone graph's inputs (a subset of the batched graph's), taken from `f` for a forward of one sequence. */
  private readonly loneFeeds: Record<string, ort.Tensor> = {};
  /** Whether the last run carried one sequence (see runNow). */
  private lastSingle = false;
  private readonly o: Record<string, ort.Tensor> = {};
  private readonly head: HeadRows;
  /** Input names of slot s's past in layer l: [l][s]. */
  private readonly past: { key: string[][]; value: string[][] };
  private readonly fresh: { key: string[]; value: string[] };
  /** Slot 0's old past rows, read in place (attention.ts oldPastRows). */
  private readonly old: { key: string[]; value: string[] };
  private readonly headDim: number;
  /** The past of an empty slot. */
  private readonly noPast: ort.Tensor;
  /** The run's sequences and their rows for BatchFeeds, reused run after run. */
  private readonly seqs: SlabSequence[] = [];
  private readonly rows: BatchRow[] = [];
  private readonly rowPool: BatchRow[] = [];
  private readonly pool: OutputBuffers[] = [];
  /** A batch's new K/V rows land here, then go to each sequence's region. */
  private staging: { keys: Float32Array[]; values: Float32Array[] } = { keys: [], values: [] };
  private logits = new Float32Array(0);
  private ids = new BigInt64Array(0);
  private top = new BigInt64Array(0);
  private runs = 0;
  /** Runs share the feeds and staging buffers, so they take turns (callers may start forwards on several sequences at once). */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly lone: ort.InferenceSession | null,
    readonly info: ModelInfo,
    c: LlamaConfig,
  ) {
    const rowSize = c.numKvHeads * c.headDim;
    this.slab = new KvSlab(c.numLayers, rowSize, info.contextLength);
    this.feeds = new BatchFeeds(BATCH_SLOTS, c.numHeads / c.numKvHeads, c.slidingWindow);
    const names = (name: (l: number, s: number) => string) => Array.from({ length: c.numLayers }, (_, l) => Array.from({ length: BATCH_SLOTS }, (_, s) => name(l, s)));
    this.past = { key: names(io.slotPastKey), value: names(io.slotPastValue) };
    this.old = layerNames(c.numLayers, io.oldPastKey, io.oldPastValue);
    this.headDim = c.headDim;
    this.noPast = new ort.Tensor('float32', new Float32Array(0), [1, 0, rowSize]);
    this.fresh = layerNames(c.numLayers, io.newKey, io.newValue);
    this.head = new HeadRows(session.inputNames.includes(io.headRows));
  }

  newSequence(): SlabSequence {
    return new SlabSequence(this, this.pool.pop() ?? new OutputBuffers(this.info.vocabSize));
  }

  /** A new sequence with a copy of `from`'s first `rows` rows, in a region of `room` rows when that is more. */
  fork(from: SlabSequence, rows: number, room: number): SlabSequence {
    const seq = this.newSequence();
    if (room > rows) this.reserveExact(seq, room);
    if (rows === 0) return seq;
    this.reserve(seq, rows);
    this.slab.copyRows(from.region!, 0, seq.region!, 0, rows);
    seq.length = rows;
    return seq;
  }

  release(seq: SlabSequence): void {
    if (seq.region) this.slab.release(seq.region);
    seq.region = null;
    this.settle(seq);
  }

  /** The sequence's output buffers go back to the pool (or to the GC): it will not be forwarded again. */
  settle(seq: SlabSequence): void {
    if (seq.out && this.pool.length < POOLED_OUTPUTS) this.pool.push(seq.out);
    seq.out = null;
  }

  run(items: readonly BatchItem[]): Promise<(Float32Array | Int32Array)[]> {
    const result = this.tail.then(() => this.runNow(items));
    this.tail = result.catch(() => {});
    return result;
  }

  private async runNow(items: readonly BatchItem[]): Promise<(Float32Array | Int32Array)[]> {
    if (items.length === 0) return [];
    if (items.length > this.info.maxBatch) throw new InvalidRequestError(`forwardBatch: ${items.length} sequences, at most ${this.info.maxBatch}`);
    const run = ++this.runs;
    const { seqs, rows } = this;
    seqs.length = 0;
    for (const { seq, input } of items) {
      if (!(seq instanceof SlabSequence) || seq.runner !== this) throw new InvalidRequestError('forwardBatch: a sequence of another model');
      if (seq.disposed) throw new InvalidRequestError('forward on a disposed sequence');
      if (!seq.out) throw new InvalidRequestError('forward on a settled sequence');
      if (seq.claim === run) throw new InvalidRequestError('forwardBatch: a sequence appears twice');
      seq.claim = run;
      checkStep(this.info, input, seq.length);
      seqs.push(seq);
    }
    // Regions first: growing one moves it to new buffers, and the views below must see the final ones.
    for (let i = 0; i < seqs.length; i++) this.reserve(seqs[i], seqs[i].length + items[i].input.tokens.length);
    rows.length = 0;
    for (let i = 0; i < seqs.length; i++) {
      const row = (this.rowPool[i] ??= { past: 0, input: items[i].input });
      row.past = seqs[i].length;
      row.input = items[i].input;
      rows.push(row);
    }
    const n = this.feeds.write(rows, this.f);
    const single = items.length === 1;
    // Each slot's past is a view of its sequence's own rows; slot 0's in two, its old rows and the rest.
    const d = this.slab.rowSize;
    const old = oldPastRows(rows[0].past, rows[0].input.tokens.length, this.headDim);
    const view = (buffer: Float32Array, from: number, to: number) => new ort.Tensor('float32', buffer.subarray(from * d, to * d), [1, to - from, d]);
    for (let l = 0; l < this.slab.numLayers; l++) {
      const first = seqs[0].region!;
      this.f[this.old.key[l]] = view(first.keys[l], 0, old);
      this.f[this.old.value[l]] = view(first.values[l], 0, old);
      for (let j = 0; j < BATCH_SLOTS; j++) {
        const row = rows[j];
        const key = this.past.key[l][j];
        const value = this.past.value[l][j];
        if (!row) {
          this.f[key] = this.f[value] = this.noPast;
          continue;
        }
        const region = seqs[j].region!;
        const from = j === 0 ? old : 0;
        this.f[key] = view(region.keys[l], from, row.past);
        this.f[value] = view(region.values[l], from, row.past);
      }
    }
    this.bindNewRows(single ? seqs[0] : null, n);
    // The head's rows: each sequence's from its headFrom on, in batch order.
    const head = this.head;
    head.begin(n);
    let offset = 0;
    for (const { input } of items) {
      const s = input.tokens.length;
      head.add(offset + head.from(input), offset + s);
      offset += s;
    }
    const h = head.write(this.f);
    const vocab = this.info.vocabSize;
    const o = this.o;
    delete o[io.logits];
    delete o[io.nextIds];
    delete o[io.nextTop];
    // A lone sequence's outputs go straight into its own buffers; a batch's are split up after the run.
    let logits: Float32Array | null = null;
    let raw: BigInt64Array | null = null;
    if (items.some((it) => it.output === 'logits')) {
      logits = single ? seqs[0].out!.logits(h) : this.batchLogits(h * vocab);
      o[io.logits] = new ort.Tensor('float32', logits, [1, h, vocab]);
    }
    if (items.some((it) => it.output === 'ids')) {
      raw = single ? seqs[0].out!.nextIds(h).raw : this.batchIds(h);
      o[io.nextIds] = new ort.Tensor('int64', raw, [1, h]);
    }
    const k = this.info.topIds ?? 0;
    let top: BigInt64Array | null = null;
    if (k > 0 && items.some((it) => it.output === 'ids' && it.top)) {
      top = single ? seqs[0].out!.topIds(h, k).raw : this.batchTop(h * k);
      o[io.nextTop] = new ort.Tensor('int64', top, [1, h, k]);
    }
    // The lone graph only once a second forward in a row carries one sequence: each session has its own ORT thread
    // pool, whose threads spin a while after a run, and switching sessions every forward (a prompt's chunk alone, then
    // the streams' batch) set both pools against each other on the cores: chat-llama-5m at 8 clients decoded 870 and
    // 872 tok/s, against 1341 and 1213 without the lone graph in alternating runs (with this rule: 1347 and 1369).
    const lone = single && this.lastSingle ? this.lone : null;
    this.lastSingle = single;
    if (lone) {
      for (const name of lone.inputNames) this.loneFeeds[name] = this.f[name];
      await lone.run(this.loneFeeds, o);
    } else {
      await this.session.run(this.f, o);
    }

    const results: (Float32Array | Int32Array)[] = [];
    offset = 0;
    // Where each sequence's head rows start among the forward's H.
    let at = 0;
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      const input = items[i].input;
      const s = input.tokens.length;
      const r = s - head.from(input);
      if (!single) this.placeNewRows(seq, offset, s);
      this.count(seq, s);
      seq.length += s;
      if (items[i].output === 'logits') {
        if (single) results.push(logits!);
        else {
          const mine = seq.out!.logits(r);
          mine.set(logits!.subarray(at * vocab, (at + r) * vocab));
          results.push(mine);
        }
      } else {
        const mine = seq.out!.nextIds(r);
        results.push(toInt32(single ? mine.raw : raw!.subarray(at, at + r), mine.ids));
        if (top && items[i].top) {
          const best = seq.out!.topIds(r, k);
          toInt32(single ? best.raw : top.subarray(at * k, (at + r) * k), best.ids);
        }
      }
      offset += s;
      at += r;
    }
    return results;
  }

  /** Sequence.reserve: room for `rows` rows (at most the context), sized to them. */
  reserveExact(seq: SlabSequence, rows: number): void {
    if (seq.disposed) throw new InvalidRequestError('reserve on a disposed sequence');
    rows = Math.min(rows, this.slab.maxRows);
    if (!seq.region) seq.region = this.slab.alloc(rows, true);
    else if (rows > seq.region.rows) seq.region = this.slab.move(seq.region, rows, seq.length, true);
  }

  /** The sequence's region holds at least `rows` rows (KvSlab sizes regions by doubling). */
  private reserve(seq: SlabSequence, rows: number): void {
    if (!seq.region) seq.region = this.slab.alloc(rows);
    else if (rows > seq.region.rows) seq.region = this.slab.move(seq.region, rows, seq.length);
  }

  /** New K/V rows: a lone sequence's straight into its region behind its past; a batch's into the staging buffers. */
  private bindNewRows(lone: SlabSequence | null, n: number): void {
    const d = this.slab.rowSize;
    const staged = this.staging.keys[0]?.length ?? 0;
    if (!lone && staged < n * d) {
      const rows = Math.max(n, (2 * staged) / d);
      const make = () => Array.from({ length: this.slab.numLayers }, () => new Float32Array(rows * d));
      this.staging = { keys: make(), values: make() };
    }
    for (let l = 0; l < this.slab.numLayers; l++) {
      const [keys, values, at] = lone ? [lone.region!.keys[l], lone.region!.values[l], lone.length * d] : [this.staging.keys[l], this.staging.values[l], 0];
      this.o[this.fresh.key[l]] = new ort.Tensor('float32', keys.subarray(at, at + n * d), [1, n, d]);
      this.o[this.fresh.value[l]] = new ort.Tensor('float32', values.subarray(at, at + n * d), [1, n, d]);
    }
  }

  private placeNewRows(seq: SlabSequence, offset: number, s: number): void {
    const d = this.slab.rowSize;
    const at = seq.length * d;
    const region = seq.region!;
    for (let l = 0; l < this.slab.numLayers; l++) {
      region.keys[l].set(this.staging.keys[l].subarray(offset * d, (offset + s) * d), at);
      region.values[l].set(this.staging.values[l].subarray(offset * d, (offset + s) * d), at);
    }
  }

  /** Host/device bytes on a GPU EP running this graph (the whole past goes up every step); nothing on the CPU. */
  private count(seq: SlabSequence, s: number): void {
    if (this.info.executionProvider === 'cpu') return;
    seq.transfers.hostToDevice += 16 * s + seq.length * this.info.kvBytesPerToken;
    seq.transfers.deviceToHost += s * this.info.kvBytesPerToken;
  }

  private batchLogits(size: number): Float32Array {
    if (this.logits.length < size) this.logits = new Float32Array(size);
    return this.logits.subarray(0, size);
  }

  private batchTop(n: number): BigInt64Array {
    if (this.top.length < n) this.top = new BigInt64Array(Math.max(n, 2 * this.top.length));
    return this.top.subarray(0, n);
  }

  private batchIds(n: number): BigInt64Array {
    if (this.ids.length < n) this.ids = new BigInt64Array(Math.max(n, 2 * this.ids.length));
    return this.ids.subarray(0, n);
  }
}
