import * as ort from 'onnxruntime-node';
import { ContextLengthError, InvalidRequestError } from '../../errors.js';
import { io } from '../builder/llama-graph.js';
import type { ForwardInput, ModelInfo, TransferCounters } from '../types.js';
import { checkForwardInput, fillCausalBias } from './mask.js';
import { Int64Buffer } from './session.js';

/**
 * The inputs every tree-graph forward takes besides its K/V (ids, positions, the additive bias), checked and
 * written into buffers reused step after step.
 */
export class StepFeeds {
  private readonly ids = new Int64Buffer();
  private readonly positions = new Int64Buffer();
  private bias = new Float32Array(0);

  constructor(private readonly info: ModelInfo) {}

  /** Sets ids, positions and bias in `feeds` for S new tokens behind `past` rows; returns their size in bytes. */
  write({ tokens, positions, mask }: ForwardInput, past: number, feeds: Record<string, ort.Tensor>): number {
    const s = tokens.length;
    const total = past + s;
    checkStep(this.info, { tokens, positions, mask }, past);
    if (!mask) {
      if (this.bias.length < s * total) this.bias = new Float32Array(Math.max(s * total, this.bias.length * 2));
      mask = fillCausalBias(this.bias, past, s);
    }
    feeds[io.inputIds] = new ort.Tensor('int64', this.ids.view(tokens), [1, s]);
    feeds[io.positionIds] = new ort.Tensor('int64', this.positions.view(positions), [1, s]);
    feeds[io.bias] = new ort.Tensor('float32', mask, [1, 1, s, total]);
    return 2 * 8 * s + 4 * mask.length;
  }
}

/** A forward's input is well formed and fits the context behind `past` cached rows. */
export function checkStep(info: ModelInfo, { tokens, positions, mask }: ForwardInput, past: number): void {
  checkForwardInput(tokens, positions, mask, past);
  const total = past + tokens.length;
  if (total > info.contextLength) throw new ContextLengthError(`sequence of ${total} tokens exceeds the context length of ${info.contextLength}`);
  for (let i = 0; i < positions.length; i++) {
    if (positions[i] < 0 || positions[i] >= info.contextLength) throw new InvalidRequestError(`position ${positions[i]} out of range`);
  }
}

export function newTransferCounters(): TransferCounters {
  return { hostToDevice: 0, deviceToHost: 0 };
}

/** Per-layer I/O names, built once rather than as template strings on every forward. */
export function layerNames(numLayers: number, key: (i: number) => string, value: (i: number) => string): { key: string[]; value: string[] } {
  const layers = Array.from({ length: numLayers }, (_, l) => l);
  return { key: layers.map(key), value: layers.map(value) };
}

/** `keep`'s contract: rows ascending, each at or after base + its index, all below the sequence length. */
export function checkKeep(base: number, rows: ArrayLike<number>, length: number): void {
  let prev = base - 1;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (r <= prev || r >= length) throw new InvalidRequestError(`keep: row ${r} is not ascending within 0..${length - 1}`);
    prev = r;
  }
}
