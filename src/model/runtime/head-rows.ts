import * as ort from 'onnxruntime-node';
import { io } from '../builder/llama-graph.js';
import type { ForwardInput } from '../types.js';
import { Int64Buffer } from './session.js';

/**
 * The `head_rows` feed: the rows of a forward the LM head computes (see headOutputs), each sequence's from its
 * ForwardInput.headFrom on. Graphs built before it take no such input and compute every row.
 */
export class HeadRows {
  private readonly rows = new Int64Buffer();
  private count = 0;

  constructor(readonly taken: boolean) {}

  /** The first row of `input` whose outputs the graph writes: its headFrom, or 0 where the graph computes them all. */
  from(input: ForwardInput): number {
    return this.taken ? Math.min(input.headFrom ?? 0, input.tokens.length - 1) : 0;
  }

  /** Starts a forward's list, room for `rows` entries. */
  begin(rows: number): void {
    this.rows.take(rows);
    this.count = 0;
  }

  /** Appends forward rows [from, to). */
  add(from: number, to: number): void {
    for (let r = from; r < to; r++) this.rows.set(this.count++, r);
  }

  /** Feeds the list (where the graph takes one); returns its length, the rows of the head's outputs. */
  write(feeds: Record<string, ort.Tensor>): number {
    if (this.taken) feeds[io.headRows] = new ort.Tensor('int64', this.rows.take(this.count), [this.count]);
    return this.count;
  }

  /** One sequence's forward: rows [from(input), S). Returns that first row. */
  writeLone(input: ForwardInput, feeds: Record<string, ort.Tensor>): number {
    const s = input.tokens.length;
    const from = this.from(input);
    this.begin(s);
    this.add(from, s);
    this.write(feeds);
    return from;
  }
}
