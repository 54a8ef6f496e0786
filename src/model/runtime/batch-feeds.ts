import * as ort from 'onnxruntime-node';
import { io } from '../builder/llama-graph.js';
import type { ForwardInput } from '../types.js';
import { Int64Buffer } from './session.js';

/** One sequence's part of a batched forward: how many rows it has cached, and its new tokens. */
export interface BatchRow {
  past: number;
  input: ForwardInput;
}

/**
 * The inputs of a batched forward besides the K/V (see slottedAttention for the layout): ragged ids and positions,
 * the new tokens per slot, whether each slot is in use, and per slot its bias as its attention stacks the rows
 * (G copies, the query heads of a kv head, of its S rows and a repeat of the last: [1, G*(S+1), past + S]) and the
 * ones of its softmax denominator. Buffers are reused step after step.
 */
export class BatchFeeds {
  private readonly ids = new Int64Buffer();
  private readonly positions = new Int64Buffer();
  private readonly sizes = new Int64Buffer();
  private readonly bias: Float32Array[];
  private readonly local: Float32Array[];
  private ones = new Float32Array(0);
  private readonly empty = new ort.Tensor('float32', new Float32Array(0), [1, 0, 0]);
  private readonly noOnes = new ort.Tensor('float32', new Float32Array(0), [0, 16]);
  private readonly active = [false, true].map((on) => new ort.Tensor('bool', Uint8Array.of(on ? 1 : 0), [1]));
  /** Each slot's input names, built once rather than every run. */
  private readonly names: { bias: string[]; local: string[]; ones: string[]; active: string[] };

  /** `groups`: query heads per kv head; `window`: the sliding window of a model that has one (its local layers get a second bias). */
  constructor(
    private readonly slots: number,
    private readonly groups: number,
    private readonly window: number | undefined,
  ) {
    this.bias = Array.from({ length: slots }, () => new Float32Array(0));
    this.local = Array.from({ length: window === undefined ? 0 : slots }, () => new Float32Array(0));
    const each = (name: (s: number) => string) => Array.from({ length: slots }, (_, s) => name(s));
    this.names = { bias: each(io.slotBias), local: each(io.slotLocalBias), ones: each(io.slotOnes), active: each(io.slotActive) };
  }

  /** Sets every input but the K/V in `feeds`; returns the number of new tokens. */
  write(rows: readonly BatchRow[], feeds: Record<string, ort.Tensor>): number {
    let n = 0;
    for (const { input } of rows) n += input.tokens.length;
    const { ids, positions, sizes, names } = this;
    // Taken first: taking may move a buffer, and `set` writes into where it is now.
    const [idsView, positionsView, sizesView] = [ids.take(n), positions.take(n), sizes.take(this.slots)];
    let offset = 0;
    for (let j = 0; j < this.slots; j++) {
      const row = rows[j];
      const s = row ? row.input.tokens.length : 0;
      sizes.set(j, s);
      if (j > 0) feeds[names.active[j]] = this.active[row ? 1 : 0];
      if (!row) {
        feeds[names.ones[j]] = this.noOnes;
        feeds[names.bias[j]] = this.empty;
        if (this.window !== undefined) feeds[names.local[j]] = this.empty;
        continue;
      }
      for (let i = 0; i < s; i++) {
        ids.set(offset + i, row.input.tokens[i]);
        positions.set(offset + i, row.input.positions[i]);
      }
      this.writeBias(j, row, feeds);
      offset += s;
    }
    feeds[io.inputIds] = new ort.Tensor('int64', idsView, [1, n]);
    feeds[io.positionIds] = new ort.Tensor('int64', positionsView, [1, n]);
    feeds[io.slotSizes] = new ort.Tensor('int64', sizesView, [this.slots]);
    return n;
  }

  private writeBias(j: number, { past, input }: BatchRow, feeds: Record<string, ort.Tensor>): void {
    const s = input.tokens.length;
    const t = past + s;
    const r = s + 1;
    const size = this.groups * r * t;
    if (this.bias[j].length < size) {
      this.bias[j] = new Float32Array(Math.max(size, 2 * this.bias[j].length));
      if (this.window !== undefined) this.local[j] = new Float32Array(this.bias[j].length);
    }
    const bias = this.bias[j];
    const local = this.window === undefined ? null : this.local[j];
    for (let i = 0; i < r; i++) this.writeRow(bias, local, i * t, input, past, Math.min(i, s - 1));
    for (let g = 1; g < this.groups; g++) {
      bias.copyWithin(g * r * t, 0, r * t);
      local?.copyWithin(g * r * t, 0, r * t);
    }
    if (this.ones.length < 16 * t) this.ones = new Float32Array(Math.max(16 * t, 2 * this.ones.length)).fill(1);
    feeds[this.names.ones[j]] = new ort.Tensor('float32', this.ones.subarray(0, 16 * t), [t, 16]);
    const dims = [1, this.groups * r, t];
    feeds[this.names.bias[j]] = new ort.Tensor('float32', bias.subarray(0, size), dims);
    if (local) feeds[this.names.local[j]] = new ort.Tensor('float32', local.subarray(0, size), dims);
  }

  /** Query row q of a sequence over its own past + s keys: the caller's mask, else causal. */
  private writeRow(bias: Float32Array, local: Float32Array | null, at: number, { tokens, positions, mask }: ForwardInput, past: number, q: number): void {
    const own = past + tokens.length;
    for (let k = 0; k < own; k++) bias[at + k] = mask ? mask[q * own + k] : k <= past + q ? 0 : -Infinity;
    if (!local) return;
    // A cached row r holds position r; the new rows hold the positions given (a draft node's own depth).
    const window = this.window!;
    const qPos = positions[q];
    for (let k = 0; k < own; k++) {
      const kPos = k < past ? k : positions[k - past];
      local[at + k] = qPos - kPos >= window ? -Infinity : bias[at + k];
    }
  }
}
