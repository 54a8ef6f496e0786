import { InvalidRequestError } from '../../errors.js';

/** Fills out[0 .. S*(P+S)) with the additive causal bias: new token s sees past rows and new tokens 0..s. */
export function fillCausalBias(out: Float32Array, past: number, s: number): Float32Array {
  const t = past + s;
  const view = out.subarray(0, s * t);
  for (let i = 0; i < s; i++) {
    const row = i * t;
    view.fill(0, row, row + past + i + 1);
    view.fill(-Infinity, row + past + i + 1, row + t);
  }
  return view;
}

/** Whether an additive bias [S, P+S] is exactly plain causal attention (what chain-only models can run). */
export function isCausalBias(mask: Float32Array, past: number, s: number): boolean {
  const t = past + s;
  for (let i = 0; i < s; i++) {
    for (let j = 0; j < t; j++) {
      const open = mask[i * t + j] === 0;
      if (open !== j <= past + i) return false;
    }
  }
  return true;
}

export function checkForwardInput(tokens: Int32Array, positions: Int32Array, mask: Float32Array | null, past: number): void {
  const s = tokens.length;
  if (s === 0) throw new InvalidRequestError('forward needs at least one token');
  if (positions.length !== s) throw new InvalidRequestError(`forward: ${positions.length} positions for ${s} tokens`);
  if (mask && mask.length !== s * (past + s)) {
    throw new InvalidRequestError(`forward: mask has ${mask.length} entries, expected ${s}x${past + s}`);
  }
}
