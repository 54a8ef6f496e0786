import * as ort from 'onnxruntime-node';
import { io } from '../builder/llama-graph.js';
import type { ForwardInput } from '../types.js';
import { Int64Buffer } from './session.js';

/** One sequence's part of a batched forward: its cached rows (`past` of them from slab row `start`) and new tokens. */
export interface BatchRow {
  past: number;
  start: number;
  input: ForwardInput;
}

/**
 * The inputs of a batched forward besides the K/V (see batchedExactAttention for the layout): ragged ids and
 * positions, the index inputs, and the bias [B,1,R,T] with R = S_max + 1 query rows and T = the longest
 * sequence's past + new keys. Buffers are reused step after step.
 */
export class BatchFeeds {
  private readonly ids = new Int64Buffer();
  private readonly positions = new Int64Buffer();
  private readonly kvGather = new Int64Buffer();
  private readonly kvScatter = new Int64Buffer();
  private readonly queryGather = new Int64Buffer();
  private readonly rowGather = new Int64Buffer();
  private bias = new Float32Array(0);
  private local = new Float32Array(0);

  /** `window`: the sliding window of a model that has one (its local layers get a second bias). */
  constructor(private readonly window: number | undefined) {}

  /** Sets every input but the K/V in `feeds`; returns the number of new tokens. */
  write(rows: readonly BatchRow[], feeds: Record<string, ort.Tensor>): number {
    const b = rows.length;
    let n = 0;
    let sMax = 0;
    let t = 0;
    for (const { past, input } of rows) {
      const s = input.tokens.length;
      n += s;
      sMax = Math.max(sMax, s);
      t = Math.max(t, past + s);
    }
    const r = sMax + 1;
    // A lone sequence's graph branch reads its own rows in order and never the gather index (batchedExactAttention).
    const gathered = b === 1 ? 0 : t * b;
    const { ids, positions, kvGather, kvScatter, queryGather, rowGather } = this;
    // Taken first: taking may move a buffer, and `set` writes into where it is now.
    const [idsView, positionsView, kvGatherView] = [ids.take(n), positions.take(n), kvGather.take(gathered)];
    const [kvScatterView, queryGatherView, rowGatherView] = [kvScatter.take(n), queryGather.take(b * r), rowGather.take(n)];
    if (this.bias.length < b * r * t) {
      this.bias = new Float32Array(Math.max(b * r * t, this.bias.length * 2));
      if (this.window !== undefined) this.local = new Float32Array(this.bias.length);
    }
    let offset = 0;
    for (let j = 0; j < b; j++) {
      const { past, start, input } = rows[j];
      const s = input.tokens.length;
      for (let i = 0; i < s; i++) {
        ids.set(offset + i, input.tokens[i]);
        positions.set(offset + i, input.positions[i]);
        kvScatter.set(offset + i, (past + i) * b + j);
        rowGather.set(offset + i, j * r + i);
      }
      // Keys at or past `past` are this step's rows (scattered over these) or masked; any row of the sequence will do.
      if (gathered > 0) for (let k = 0; k < t; k++) kvGather.set(k * b + j, start + (k < past ? k : 0));
      for (let i = 0; i < r; i++) {
        const q = Math.min(i, s - 1);
        queryGather.set(j * r + i, offset + q);
        this.writeBiasRow((j * r + i) * t, t, input, past, q);
      }
      offset += s;
    }
    feeds[io.inputIds] = new ort.Tensor('int64', idsView, [1, n]);
    feeds[io.positionIds] = new ort.Tensor('int64', positionsView, [1, n]);
    feeds[io.kvGather] = new ort.Tensor('int64', kvGatherView, [gathered]);
    feeds[io.kvScatter] = new ort.Tensor('int64', kvScatterView, [n, 1]);
    feeds[io.queryGather] = new ort.Tensor('int64', queryGatherView, [b * r]);
    feeds[io.rowGather] = new ort.Tensor('int64', rowGatherView, [n]);
    feeds[io.bias] = new ort.Tensor('float32', this.bias.subarray(0, b * r * t), [b, 1, r, t]);
    if (this.window !== undefined) feeds[io.localBias] = new ort.Tensor('float32', this.local.subarray(0, b * r * t), [b, 1, r, t]);
    return n;
  }

  /** Query row q of a sequence over its own past + s keys (the caller's mask, else causal), blocked beyond. */
  private writeBiasRow(at: number, t: number, { tokens, positions, mask }: ForwardInput, past: number, q: number): void {
    const own = past + tokens.length;
    const bias = this.bias;
    for (let k = 0; k < own; k++) bias[at + k] = mask ? mask[q * own + k] : k <= past + q ? 0 : -Infinity;
    bias.fill(-Infinity, at + own, at + t);
    if (this.window === undefined) return;
    // A cached row r holds position r; the new rows hold the positions given (a draft node's own depth).
    const local = this.local;
    const qPos = positions[q];
    for (let k = 0; k < own; k++) {
      const kPos = k < past ? k : positions[k - past];
      local[at + k] = qPos - kPos >= this.window ? -Infinity : bias[at + k];
    }
    local.fill(-Infinity, at + own, at + t);
  }
}
