import type { OnnxGraph } from './onnx/graph.js';

/**
 * `bias` [1,1,S,T] with keys `window` or more positions behind their query blocked as well (Mistral / Gemma 3
 * sliding-window attention, HF's and llama.cpp's rule: key position > query position - window).
 * Key positions are 0..P-1 for the cached rows (row r holds position r) and `pos` for the S new tokens, so a
 * draft-tree node is held to the window of its own position like any decoded token.
 */
export function windowBias(g: OnnxGraph, bias: string, pos: string, window: number): string {
  const axis0 = g.constInt64('axis0', [0]);
  const t = g.op('Shape', [bias], { start: { i: 3 }, end: { i: 4 } });
  const s = g.op('Shape', [pos], { start: { i: 1 }, end: { i: 2 } });
  const past = g.op('Squeeze', [g.op('Sub', [t, s]), axis0]);
  const newPos = g.op('Reshape', [pos, g.constInt64('flat', [-1])]);
  const pastPos = g.op('Range', [g.constInt64('zero', [0], []), past, g.constInt64('one', [1], [])]);
  const keyPos = g.op('Concat', [pastPos, newPos], { axis: { i: 0 } });
  const queryPos = g.op('Unsqueeze', [newPos, g.constInt64('axis1', [1])]);
  const far = g.op('GreaterOrEqual', [g.op('Sub', [queryPos, keyPos]), g.constInt64('window', [window], [])]);
  const blocked = g.op('Where', [far, g.constFloat('blocked', [-Infinity], []), g.constFloat('open', [0], [])]);
  return g.op('Add', [bias, blocked]);
}
