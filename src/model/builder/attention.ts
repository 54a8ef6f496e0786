import type { Attr, OnnxGraph } from './onnx/graph.js';
import type { AttentionKind } from './options.js';

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Softmax scale of q·k; 1/sqrt(headDim) when absent. */
  attentionScale?: number;
}

/**
 * Values computed once per graph that every layer's attention needs.
 * `bias` is the additive mask [1,1,S,T] ('exact': [1,G*(S+1),T], see exactAttention); seqlensK/totalLength exist
 * only for GQA; `slots` only in the batched layout.
 */
export interface AttentionContext {
  kind: AttentionKind;
  bias: string;
  seqlensK?: string;
  totalLength?: string;
  /** 'exact' only: [T, 16] of ones, whose product with the exponentials is the softmax denominator. */
  ones?: string;
  slots?: Slots;
}

/**
 * The batched layout (see slottedAttention): slot s of a forward holds one sequence, whose `sizes[s]` new tokens
 * follow the earlier slots' in the ragged token axis; a slot past the forward's sequences has size 0.
 */
export interface Slots {
  /** int64 [slots]: new tokens per slot ('' in a one-slot graph, which splits nothing). */
  sizes: string;
  /** Per slot: its exactAttention bias [1, G*(S+1), T] (src/model/runtime/batch-feeds.ts writes them all). */
  bias: string[];
  /** Per slot: the ones of its softmax denominator, [T, 16]. */
  ones: string[];
  /** Per slot: bool [1], whether it holds a sequence (slot 0 always does, and has none). */
  active: string[];
  /** Slot 0's bias and ones cut where its old past rows end (see oldPastRows): [old, the rest]; `some`: bool [1], any old rows. */
  split: { some: string; bias: [string, string]; ones: [string, string] };
}

/** Keys are summed by MLAS in blocks of this many (the stride it takes for the N <= 16 GEMMs of exactAttention). */
export const KEY_BLOCK = 1024;

/**
 * How many of slot 0's past rows attention reads in place, as a GEMM of their own, rather than through the Concat
 * with the new rows (which copies them: at 4k past that copy is most of a decode step's memory traffic).
 * Only whole key blocks, and only when the rest (later past + new rows) fits in one block: MLAS sums the blocks of
 * a GEMM one after another, each from zero (see sliceWidth), so old-part + rest is then bit for bit the sum of one
 * GEMM over all keys. Score GEMMs sum over the head's dims in one block only up to 128 dims; wider heads read all
 * of the past through the Concat.
 */
export function oldPastRows(past: number, newRows: number, headDim: number): number {
  const old = past - (past % KEY_BLOCK);
  return headDim <= 128 && past + newRows - old <= KEY_BLOCK ? old : 0;
}

/** int64 [1]: the rows of the old-past input `name` [1, A, kvD]. */
export function oldRows(g: OnnxGraph, name: string): string {
  return g.op('Shape', [name], { start: { i: 1 }, end: { i: 2 } });
}

/** x cut along its last axis at `at` (int64 [1]): [x[..., :at], x[..., at:]]. */
function cutLast(g: OnnxGraph, x: string, at: string, axis: number): [string, string] {
  const ax = g.constInt64(`axis${axis}`, [axis]);
  return [
    g.op('Slice', [x, g.constInt64('zero', [0]), at, ax]),
    g.op('Slice', [x, at, g.constInt64('int_max', [2 ** 31 - 1]), ax]),
  ];
}

/** The `scale` attribute of every attention op here, when the family sets one. */
export function scaleAttr(scale: number | undefined): Record<string, Attr> {
  return scale === undefined ? {} : { scale: { f: scale } };
}

export function attentionContext(g: OnnxGraph, kind: AttentionKind, bias: string, shape: AttentionShape): AttentionContext {
  if (kind === 'exact') {
    // Rows as exactAttention stacks its queries: G copies of the S+1 padded rows, [1, G*(S+1), T].
    const padded = g.op('Concat', [bias, lastRow(g, bias, 2)], { axis: { i: 2 } });
    const rows = g.op('Tile', [padded, g.constInt64('bias_tiles', [1, 1, shape.numHeads / shape.numKvHeads, 1])]);
    const onesShape = g.op('Concat', [g.op('Shape', [bias], { start: { i: 3 } }), g.constInt64('ones_width', [16])], { axis: { i: 0 } });
    return { kind, bias: g.op('Squeeze', [rows, g.constInt64('axis0', [0])]), ones: ones(g, onesShape) };
  }
  if (kind !== 'gqa') return { kind, bias };
  const t = g.op('Shape', [bias], { start: { i: 3 }, end: { i: 4 } });
  const seqlensK = g.op('Cast', [g.op('Sub', [t, g.constInt64('one', [1])])], { to: { i: 6 } });
  const totalLength = g.op('Cast', [g.op('Squeeze', [t, g.constInt64('axis0', [0])])], { to: { i: 6 } });
  return { kind, bias, seqlensK, totalLength };
}

/**
 * Attention of the S new queries over past + new keys. q [1,S,H*hd] and kNew/vNew [1,S,kvH*hd] (keys after RoPE);
 * pastK/pastV are the cache's filled prefix [1,P,kvH*hd], one per slot in the batched layout and else one.
 * Returns [1,S,H*hd].
 */
export function attention(
  g: OnnxGraph,
  ctx: AttentionContext,
  shape: AttentionShape,
  q: string,
  kNew: string,
  vNew: string,
  pastK: string[],
  pastV: string[],
  old?: [key: string, value: string],
): string {
  const { numHeads: h, numKvHeads: kvH, headDim: hd } = shape;
  const scale = scaleAttr(shape.attentionScale);
  if (ctx.kind === 'gqa') {
    // GQA wants its past as BNSH. Its built-in causal mask is applied on top of the bias, which is harmless
    // for draft trees: a node only ever attends to ancestors, which come earlier.
    const toBnsh = (x: string) =>
      g.op('Transpose', [g.op('Reshape', [x, g.constInt64('bnsh_shape', [1, 0, kvH, hd])])], { perm: { ints: [0, 2, 1, 3] } });
    const [y] = g.node(
      'GroupQueryAttention',
      [q, kNew, vNew, toBnsh(pastK[0]), toBnsh(pastV[0]), ctx.seqlensK!, ctx.totalLength!, '', '', '', ctx.bias],
      3,
      { num_heads: { i: h }, kv_num_heads: { i: kvH }, ...scale },
      'com.microsoft',
    );
    return y;
  }
  if (ctx.slots) return slottedAttention(g, ctx, shape, q, kNew, vNew, pastK, pastV, old!);
  const k = g.op('Concat', [pastK[0], kNew], { axis: { i: 1 } });
  const v = g.op('Concat', [pastV[0], vNew], { axis: { i: 1 } });
  if (ctx.kind === 'exact') return exactAttention(g, shape, q, [{ k, v, bias: ctx.bias, ones: ctx.ones! }]);
  if (ctx.kind === 'onnx') {
    return g.op('Attention', [q, k, v, ctx.bias], { q_num_heads: { i: h }, kv_num_heads: { i: kvH }, ...scale });
  }
  if (ctx.kind === 'matmul') return matmulAttention(g, ctx, shape, q, k, v);
  // MultiHeadAttention needs one kv head per query head: repeat each kv head h/kvH times, as HF repeat_kv does.
  const expand = (x: string) => {
    if (kvH === h) return x;
    const split = g.op('Reshape', [x, g.constInt64('kv_split', [1, 0, kvH, 1, hd])]);
    const wide = g.op('Expand', [split, g.constInt64('kv_repeat', [1, 1, 1, h / kvH, 1])]);
    return g.op('Reshape', [wide, g.constInt64('kv_merge', [1, 0, h * hd])]);
  };
  return g.op('MultiHeadAttention', [q, expand(k), expand(v), '', '', ctx.bias], { num_heads: { i: h }, ...scale }, 'com.microsoft');
}

/**
 * Attention as MatMul, Softmax, MatMul, in ops every EP implements: the WebGPU default. The WebGPU EP's
 * MultiHeadAttention (onnxruntime-node 1.30) is wrong from 32 query rows: it hands them to a flash-attention shader
 * that declares its score accumulators inside the loop over key blocks, and the SPIR-V its bundled compiler (Dawn's
 * Tint) emits zeroes them once, not per block, so every block's scores carry the previous block's probabilities
 * (test/integration/webgpu-mha-kernel.test.ts keeps the reproduction). The G query heads of a kv head form one
 * batch entry and MatMul broadcasts K/V over them, so the cache is never repeated.
 */
function matmulAttention(g: OnnxGraph, ctx: AttentionContext, shape: AttentionShape, q: string, k: string, v: string): string {
  const { numHeads: h, numKvHeads: kvH, headDim: hd } = shape;
  const scaled = g.op('Mul', [q, g.constFloat('attention_scale', [shape.attentionScale ?? 1 / Math.sqrt(hd)], [])]);
  // [1,S,H*hd] → [S, kvH, G, hd] → [kvH, G, S, hd]
  const qh = g.op('Transpose', [g.op('Reshape', [scaled, g.constInt64('q_groups', [-1, kvH, h / kvH, hd])])], { perm: { ints: [1, 2, 0, 3] } });
  // [1,T,kvH*hd] → [T, kvH, 1, hd] → keys [kvH, 1, hd, T], values [kvH, 1, T, hd]
  const byHead = (x: string) => g.op('Reshape', [x, g.constInt64('kv_groups', [-1, kvH, 1, hd])]);
  const kt = g.op('Transpose', [byHead(k)], { perm: { ints: [1, 2, 3, 0] } });
  const vh = g.op('Transpose', [byHead(v)], { perm: { ints: [1, 2, 0, 3] } });
  // [kvH, G, S, T] + bias [1, 1, S, T]
  const probs = g.op('Softmax', [g.op('Add', [g.op('MatMul', [qh, kt]), ctx.bias])], { axis: { i: -1 } });
  // [kvH, G, S, hd] → [S, kvH, G, hd] → [1, S, H*hd]
  const out = g.op('Transpose', [g.op('MatMul', [probs, vh])], { perm: { ints: [2, 0, 1, 3] } });
  return g.op('Reshape', [out, g.constInt64('merge_heads', [1, -1, h * hd])]);
}

/**
 * Attention whose every row is bit for bit what it would be alone: the row of a draft token in an S-token forward
 * (chain or tree) equals the row of the same token decoded one per forward over the compacted cache. Lookahead is
 * lossless only with that, and on q8/q4 a last-bit difference is not harmless: it can flip an int8 activation
 * rounding in MatMulNBits (accuracy level 4) and so a near-tie.
 * The fused CPU kernels break it twice: (1) one query multiplies by V through MLAS's M = 1 GEMV, which sums in
 * another order than the GEMM of S > 1 queries; (2) the softmax denominator is a SIMD sum whose lanes follow key
 * positions, and a tree node's ancestors sit at other positions than in the compacted cache.
 * So: the queries are padded by a duplicate of the last row (M >= 2 always; the pad's output is dropped), and the
 * softmax is unnormalized: exp(s - max)·V and exp(s - max)·1 are both GEMM sums over the keys in order, where
 * masked keys add exact zeros. (The ones are 16 columns wide: a single column takes an N = 1 path whose sum is
 * lane-ordered again.) The G query heads of a kv head are stacked as GEMM rows, and FusedMatMul's batch transpose
 * reads K and V per head in place, so the cache is neither repeated nor copied.
 */
/**
 * Keys, values, bias columns and softmax ones of one run of consecutive keys; exactAttention takes the keys in one
 * part or, for a long past, in two (see oldPastRows), and then sums each part's GEMMs in key order.
 */
interface KeyPart {
  k: string;
  v: string;
  bias: string;
  ones: string;
}

function exactAttention(g: OnnxGraph, shape: AttentionShape, q: string, parts: KeyPart[]): string {
  const { numHeads: h, numKvHeads: kvH, headDim: hd } = shape;
  const padded = g.op('Concat', [q, lastRow(g, q, 1)], { axis: { i: 1 } });
  // [S+1, kvH, G, hd] → [kvH, G, S+1, hd] → [kvH, G*(S+1), hd]
  const grouped = g.op('Transpose', [g.op('Reshape', [padded, g.constInt64('q_groups', [-1, kvH, h / kvH, hd])])], { perm: { ints: [1, 2, 0, 3] } });
  const qh = g.op('Reshape', [grouped, g.constInt64('q_rows', [kvH, -1, hd])]);
  // [T, kvH, hd], read as [kvH, T, hd] by transBatchB
  const byHead = (x: string) => g.op('Reshape', [x, g.constInt64('kv_heads', [-1, kvH, hd])]);
  const fused = (a: string, b: string, transB: number, alpha = 1) =>
    g.op('FusedMatMul', [a, b], { transB: { i: transB }, transBatchB: { i: 1 }, alpha: { f: alpha } }, 'com.microsoft');
  const scores = parts.map((p) => g.op('Add', [fused(qh, byHead(p.k), 1, shape.attentionScale ?? 1 / Math.sqrt(hd)), p.bias]));
  // One max over all scores: ORT reduces an empty part (no old rows) to an empty tensor, not to -inf. The scores are
  // [kvH, G*(S+1), T], a small copy beside the keys'.
  const all = scores.length === 1 ? scores[0] : g.op('Concat', scores, { axis: { i: -1 } });
  const max = g.op('ReduceMax', [all, g.constInt64('last_axis', [-1])], { keepdims: { i: 1 } });
  const e = scores.map((x) => g.op('Exp', [g.op('Sub', [x, max])]));
  const inOrder = (terms: string[]) => terms.reduce((sum, t) => g.op('Add', [sum, t]));
  const den = g.op('Slice', [inOrder(parts.map((p, i) => g.op('MatMul', [e[i], p.ones]))), g.constInt64('zero', [0]), g.constInt64('one', [1]), g.constInt64('axis2', [2])]);
  // e·V per column slice of V, [kvH, 1, M, T] · [kvH, hd/w, T, w] → [kvH, hd/w, M, w] → [kvH, M, hd] (see sliceWidth).
  const w = sliceWidth(hd);
  const slices = (v: string) => g.op('Reshape', [v, g.constInt64('v_slices', [-1, kvH, hd / w, w])]);
  const product = inOrder(parts.map((p, i) => fused(g.op('Unsqueeze', [e[i], g.constInt64('axis1', [1])]), slices(p.v), 0)));
  const ev = g.op('Reshape', [g.op('Transpose', [product], { perm: { ints: [0, 2, 1, 3] } }), g.constInt64('ev_rows', [kvH, -1, hd])]);
  const out = g.op('Reshape', [g.op('Div', [ev, den]), g.constInt64('out_groups', [kvH, h / kvH, -1, hd])]);
  const rows = g.op('Slice', [out, g.constInt64('zero', [0]), g.constInt64('minus_one', [-1]), g.constInt64('axis2', [2])]);
  return g.op('Reshape', [g.op('Transpose', [rows], { perm: { ints: [2, 0, 1, 3] } }), g.constInt64('merge_heads', [1, -1, h * hd])]);
}

/**
 * Width of the V column slices e·V multiplies by. MLAS blocks a GEMM's sum over K (here: keys) by a stride it
 * derives from N, and may split N across threads when there are fewer GEMMs than threads; N <= 16 is never split
 * and always gets the widest stride (1024 keys), so the sums are the same at every S. It is also faster on the CPU:
 * about half the time of one GEMM of N = hd, whose reads of V per head are strided.
 */
function sliceWidth(hd: number): number {
  let w = 16;
  while (hd % w !== 0) w /= 2;
  return w;
}

/** [rows, 16] of ones; `shape` is int64 [2]. */
function ones(g: OnnxGraph, shape: string): string {
  return g.op('Expand', [g.constFloat('one', [1], [1, 1]), shape]);
}

/**
 * The context of the batched layout, all of whose per-slot values the runtime feeds (no ops per unused slot);
 * `old` is the number of slot 0's old past rows (int64 [1], see oldRows).
 */
export function slotsContext(g: OnnxGraph, old: string, slots: Omit<Slots, 'split'>): AttentionContext {
  const some = g.op('Greater', [old, g.constInt64('zero', [0])]);
  const split = { some, bias: cutLast(g, slots.bias[0], old, 2), ones: cutLast(g, slots.ones[0], old, 0) };
  return { kind: 'exact', bias: slots.bias[0], slots: { ...slots, split } };
}

/** The same slots with other biases (a sliding-window model's local layers). */
export function withSlotBias(g: OnnxGraph, old: string, ctx: AttentionContext, bias: string[]): AttentionContext {
  const split = { ...ctx.slots!.split, bias: cutLast(g, bias[0], old, 2) };
  return { ...ctx, bias: bias[0], slots: { ...ctx.slots!, bias, split } };
}

/**
 * exactAttention for several sequences in one forward, each row bit for bit what its sequence alone gives.
 * Projections, norms and the MLP run on the N ragged tokens; attention runs per slot on the slot's own tokens, over
 * its own past (an input that is a view of the runtime's cache, no copy) followed by its new rows: exactly the
 * ops, shapes and key indices of the sequence alone, so no padding and one copy of each sequence's keys (the
 * Concat). Each slot past the second runs inside an If on its being active, so a forward pays only for the slots it
 * fills.
 */
function slottedAttention(
  g: OnnxGraph,
  ctx: AttentionContext,
  shape: AttentionShape,
  q: string,
  kNew: string,
  vNew: string,
  pastK: string[],
  pastV: string[],
  old: [key: string, value: string],
): string {
  const slots = ctx.slots!;
  const n = pastK.length;
  const slot = (sub: OnnxGraph, s: number, qs: string, ks: string, vs: string) => {
    const k = sub.op('Concat', [pastK[s], ks], { axis: { i: 1 } });
    const v = sub.op('Concat', [pastV[s], vs], { axis: { i: 1 } });
    const all = (b: OnnxGraph) => exactAttention(b, shape, qs, [{ k, v, bias: slots.bias[s], ones: slots.ones[s] }]);
    if (s > 0) return all(sub);
    // Slot 0's old rows are read where they are, and only the later past is copied along with the new rows. Without
    // old rows the one-part form runs: ORT's batch-transposed FusedMatMul fails on an empty operand.
    const { some, bias, ones } = slots.split;
    const parts = (b: OnnxGraph) =>
      exactAttention(b, shape, qs, [
        { k: old[0], v: old[1], bias: bias[0], ones: ones[0] },
        { k, v, bias: bias[1], ones: ones[1] },
      ]);
    return sub.ifElse(some, 'float32', (t) => [parts(t)], (e) => [all(e)])[0];
  };
  // The lone graph (buildLlamaGraph with one slot): the ops of the batched graph's lone branch, at top level.
  if (n === 1) return slot(g, 0, q, kNew, vNew);
  const [y] = g.ifElse(
    slots.active[1],
    'float32',
    (b) => {
      const split = (x: string) => b.node('Split', [x, slots.sizes], n, { axis: { i: 1 } });
      const [qs, ks, vs] = [split(q), split(kNew), split(vNew)];
      // Slots 0 and 1 hold sequences here; each later one runs in an If of its own, which captures only that slot's
      // values (a chain of nested Ifs passed every later slot's through each level: measured ~230 µs per If).
      // An inactive slot's split is [1, 0, H*hd]: the empty rows its else branch yields.
      const parts = [slot(b, 0, qs[0], ks[0], vs[0]), slot(b, 1, qs[1], ks[1], vs[1])];
      for (let s = 2; s < n; s++) {
        parts.push(b.ifElse(slots.active[s], 'float32', (t) => [slot(t, s, qs[s], ks[s], vs[s])], (e) => [e.op('Identity', [qs[s]])])[0]);
      }
      return [b.op('Concat', parts, { axis: { i: 1 } })];
    },
    // A lone sequence skips the splits: the same ops on the same values as slot 0 of a batch.
    (lone) => [slot(lone, 0, q, kNew, vNew)],
  );
  return y;
}

/** The last slice of x along `axis`. */
function lastRow(g: OnnxGraph, x: string, axis: number): string {
  return g.op('Slice', [x, g.constInt64('minus_one', [-1]), g.constInt64('int_max', [2 ** 31 - 1]), g.constInt64(`axis${axis}`, [axis])]);
}
