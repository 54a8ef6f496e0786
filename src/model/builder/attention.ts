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
 * `bias` is the additive mask [1,1,S,T] ('exact': [1,G*(S+1),T], see exactAttention; batched: [B,1,G*R,T]);
 * seqlensK/totalLength exist only for GQA.
 */
export interface AttentionContext {
  kind: AttentionKind;
  bias: string;
  seqlensK?: string;
  totalLength?: string;
  /** 'exact' only: [T, 16] of ones, whose product with the exponentials is the softmax denominator. */
  ones?: string;
  /** The batched 'exact' layout only (see batchedExactAttention). */
  batch?: BatchShapes;
}

/**
 * The index inputs of a batched forward: B sequences, N new tokens in all (ragged, concatenated), R = S_max + 1
 * query rows per sequence, T key rows per sequence. Filled by the runtime (src/model/runtime/batch-feeds.ts).
 */
export interface BatchIndices {
  /** int64 [T*B]: the cache row behind key t of sequence b, at t*B + b (position-major). */
  kvGather: string;
  /** int64 [N, 1]: where each new token's K/V row goes among those T*B rows (its own sequence, at its past length + j). */
  kvScatter: string;
  /** int64 [B*R]: the ragged row behind each padded query row; pad rows repeat their sequence's last token. */
  queryGather: string;
  /** int64 [N]: the padded row each ragged row's output comes from. */
  rowGather: string;
}

/** Shapes the batched layout reshapes to, derived once from the bias [B,1,R,T]. */
interface BatchShapes extends BatchIndices {
  q5: string;
  q3: string;
  kv3: string;
  /** bool [1]: B = 1, when the past input holds only the sequence's own rows, in order. */
  lone: string;
  /** V as [T, B*kvH, hd/w, w]: column slices of width w <= 16 (see batchedExactAttention). */
  v4: string;
  scores4: string;
  scores3: string;
  out5: string;
}

/** The `scale` attribute of every attention op here, when the family sets one. */
export function scaleAttr(scale: number | undefined): Record<string, Attr> {
  return scale === undefined ? {} : { scale: { f: scale } };
}

export function attentionContext(g: OnnxGraph, kind: AttentionKind, bias: string, shape: AttentionShape, batch?: BatchIndices): AttentionContext {
  if (kind === 'exact' && batch) return batchedContext(g, bias, shape, batch);
  if (kind === 'exact') {
    // Rows as exactAttention stacks its queries: G copies of the S+1 padded rows, [1, G*(S+1), T].
    const padded = g.op('Concat', [bias, lastRow(g, bias, 2)], { axis: { i: 2 } });
    const rows = g.op('Tile', [padded, g.constInt64('bias_tiles', [1, 1, shape.numHeads / shape.numKvHeads, 1])]);
    const onesShape = g.op('Concat', [g.op('Shape', [bias], { start: { i: 3 } }), g.constInt64('ones_width', [16])], { axis: { i: 0 } });
    return { kind, bias: g.op('Squeeze', [rows, g.constInt64('axis0', [0])]), ones: g.op('Expand', [g.constFloat('one', [1], [1, 1]), onesShape]) };
  }
  if (kind !== 'gqa') return { kind, bias };
  const t = g.op('Shape', [bias], { start: { i: 3 }, end: { i: 4 } });
  const seqlensK = g.op('Cast', [g.op('Sub', [t, g.constInt64('one', [1])])], { to: { i: 6 } });
  const totalLength = g.op('Cast', [g.op('Squeeze', [t, g.constInt64('axis0', [0])])], { to: { i: 6 } });
  return { kind, bias, seqlensK, totalLength };
}

/**
 * Attention of the S new queries over past + new keys. q [1,S,H*hd] and kNew/vNew [1,S,kvH*hd] (keys after RoPE);
 * pastK/pastV are the cache's filled prefix [1,P,kvH*hd]. Returns [1,S,H*hd].
 */
export function attention(
  g: OnnxGraph,
  ctx: AttentionContext,
  shape: AttentionShape,
  q: string,
  kNew: string,
  vNew: string,
  pastK: string,
  pastV: string,
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
      [q, kNew, vNew, toBnsh(pastK), toBnsh(pastV), ctx.seqlensK!, ctx.totalLength!, '', '', '', ctx.bias],
      3,
      { num_heads: { i: h }, kv_num_heads: { i: kvH }, ...scale },
      'com.microsoft',
    );
    return y;
  }
  if (ctx.batch) return batchedExactAttention(g, ctx, shape, q, kNew, vNew, pastK, pastV);
  const k = g.op('Concat', [pastK, kNew], { axis: { i: 1 } });
  const v = g.op('Concat', [pastV, vNew], { axis: { i: 1 } });
  if (ctx.kind === 'exact') return exactAttention(g, ctx, shape, q, k, v);
  if (ctx.kind === 'onnx') {
    return g.op('Attention', [q, k, v, ctx.bias], { q_num_heads: { i: h }, kv_num_heads: { i: kvH }, ...scale });
  }
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
function exactAttention(g: OnnxGraph, ctx: AttentionContext, shape: AttentionShape, q: string, k: string, v: string): string {
  const { numHeads: h, numKvHeads: kvH, headDim: hd } = shape;
  const padded = g.op('Concat', [q, lastRow(g, q, 1)], { axis: { i: 1 } });
  // [S+1, kvH, G, hd] → [kvH, G, S+1, hd] → [kvH, G*(S+1), hd]
  const grouped = g.op('Transpose', [g.op('Reshape', [padded, g.constInt64('q_groups', [-1, kvH, h / kvH, hd])])], { perm: { ints: [1, 2, 0, 3] } });
  const qh = g.op('Reshape', [grouped, g.constInt64('q_rows', [kvH, -1, hd])]);
  // [T, kvH, hd], read as [kvH, T, hd] by transBatchB
  const byHead = (x: string) => g.op('Reshape', [x, g.constInt64('kv_heads', [-1, kvH, hd])]);
  const fused = (a: string, b: string, transB: number, alpha = 1) =>
    g.op('FusedMatMul', [a, b], { transB: { i: transB }, transBatchB: { i: 1 }, alpha: { f: alpha } }, 'com.microsoft');
  const scores = g.op('Add', [fused(qh, byHead(k), 1, shape.attentionScale ?? 1 / Math.sqrt(hd)), ctx.bias]);
  const e = g.op('Exp', [g.op('Sub', [scores, g.op('ReduceMax', [scores, g.constInt64('last_axis', [-1])], { keepdims: { i: 1 } })])]);
  const den = g.op('Slice', [g.op('MatMul', [e, ctx.ones!]), g.constInt64('zero', [0]), g.constInt64('one', [1]), g.constInt64('axis2', [2])]);
  const out = g.op('Reshape', [g.op('Div', [fused(e, byHead(v), 0), den]), g.constInt64('out_groups', [kvH, h / kvH, -1, hd])]);
  const rows = g.op('Slice', [out, g.constInt64('zero', [0]), g.constInt64('minus_one', [-1]), g.constInt64('axis2', [2])]);
  return g.op('Reshape', [g.op('Transpose', [rows], { perm: { ints: [2, 0, 1, 3] } }), g.constInt64('merge_heads', [1, -1, h * hd])]);
}

/** The bias [B,1,R,T] with its rows as the batched GEMMs stack them, the ones, and the shapes of the layout. */
function batchedContext(g: OnnxGraph, bias: string, shape: AttentionShape, batch: BatchIndices): AttentionContext {
  const { numHeads: h, numKvHeads: kvH, headDim: hd } = shape;
  const groups = h / kvH;
  const dim = (x: string, start: number) => g.op('Shape', [x], { start: { i: start }, end: { i: start + 1 } });
  const cat = (parts: string[]) => g.op('Concat', parts, { axis: { i: 0 } });
  const [b, r, t] = [dim(bias, 0), dim(bias, 2), dim(bias, 3)];
  const m = g.op('Mul', [r, g.constInt64('groups', [groups])]);
  // [B,1,R,T] → [B,G,R,T] → [B,1,G*R,T]: the G query heads of a kv head, each with the R rows of its sequence.
  const rows = g.op('Reshape', [g.op('Tile', [bias, g.constInt64('bias_tiles', [1, groups, 1, 1])]), cat([b, g.constInt64('one', [1]), m, t])]);
  const minusOne = g.constInt64('minus_one', [-1]);
  const bk = g.op('Mul', [b, g.constInt64('kv_heads', [kvH])]);
  return {
    kind: 'exact',
    bias: rows,
    ones: g.op('Expand', [g.constFloat('one', [1], [1, 1]), cat([t, g.constInt64('ones_width', [16])])]),
    batch: {
      ...batch,
      lone: g.op('Equal', [b, g.constInt64('one', [1])]),
      q5: cat([b, r, g.constInt64('kv_groups', [kvH, groups, hd])]),
      q3: cat([minusOne, m, g.constInt64('head_dim', [hd])]),
      kv3: cat([minusOne, bk, g.constInt64('head_dim', [hd])]),
      v4: cat([minusOne, bk, g.constInt64('v_slices', [hd / sliceWidth(hd), sliceWidth(hd)])]),
      scores4: cat([b, g.constInt64('kv_heads', [kvH]), m, t]),
      scores3: cat([minusOne, m, t]),
      out5: cat([b, g.constInt64('kv_groups', [kvH, groups]), r, g.constInt64('head_dim', [hd])]),
    },
  };
}

/**
 * exactAttention for B sequences in one forward, each row bit for bit what its sequence alone (B = 1) gives.
 * Projections, norms and the MLP run on the N ragged tokens; only attention needs sequences apart. Queries are
 * gathered into R = S_max + 1 rows per sequence (pads repeat the sequence's last token, so every GEMM has M >= 2
 * as in exactAttention). Keys: the cache rows of every sequence are gathered position-major [T, B*kvH, hd] (one
 * copy of the past, as the Concat of the single-sequence graph), and each new row is scattered to its sequence's
 * own past length + j. So every key sits at the same index as when its sequence runs alone, and the GEMM sums over
 * keys block at the same places (MLAS splits K into fixed strides; a key moved across a stride boundary would
 * change the rounding). Keys past a sequence's own end are masked: exact zeros in both sums.
 */
function batchedExactAttention(g: OnnxGraph, ctx: AttentionContext, shape: AttentionShape, q: string, kNew: string, vNew: string, pastK: string, pastV: string): string {
  const { numHeads: h, numKvHeads: kvH, headDim: hd } = shape;
  const b = ctx.batch!;
  const queries = g.op('Gather', [g.op('Reshape', [q, g.constInt64('q_flat', [-1, h * hd])]), b.queryGather], { axis: { i: 0 } });
  // [B,R,kvH,G,hd] → [B,kvH,G,R,hd] → [B*kvH, G*R, hd]
  const grouped = g.op('Transpose', [g.op('Reshape', [queries, b.q5])], { perm: { ints: [0, 2, 3, 1, 4] } });
  const qh = g.op('Reshape', [grouped, b.q3]);
  const flat = g.constInt64('kv_flat', [-1, kvH * hd]);
  const fresh = [g.op('Reshape', [kNew, flat]), g.op('Reshape', [vNew, flat])];
  // A lone sequence is fed only its own past rows, and its new rows go right behind them: one copy, as the
  // unbatched graph's Concat. A batch gathers its pasts and scatters the new rows in (two copies: ScatterND
  // cannot write in place). Both put every key at the same index.
  const [allK, allV] = g.ifElse(
    b.lone,
    'float32',
    (t) => [t.op('Concat', [pastK, fresh[0]], { axis: { i: 0 } }), t.op('Concat', [pastV, fresh[1]], { axis: { i: 0 } })],
    (e) => [pastK, pastV].map((past, i) => e.op('ScatterND', [e.op('Gather', [past, b.kvGather], { axis: { i: 0 } }), b.kvScatter, fresh[i]])),
  );
  const keys = (all: string) => g.op('Reshape', [all, b.kv3]);
  const fused = (a: string, x: string, transB: number, alpha = 1) =>
    g.op('FusedMatMul', [a, x], { transB: { i: transB }, transBatchB: { i: 1 }, alpha: { f: alpha } }, 'com.microsoft');
  const raw = g.op('Reshape', [fused(qh, keys(allK), 1, shape.attentionScale ?? 1 / Math.sqrt(hd)), b.scores4]);
  const scores = g.op('Add', [raw, ctx.bias]);
  const e = g.op('Reshape', [g.op('Exp', [g.op('Sub', [scores, g.op('ReduceMax', [scores, g.constInt64('last_axis', [-1])], { keepdims: { i: 1 } })])]), b.scores3]);
  const den = g.op('Slice', [g.op('MatMul', [e, ctx.ones!]), g.constInt64('zero', [0]), g.constInt64('one', [1]), g.constInt64('axis2', [2])]);
  // e·V per column slice of V: [B*kvH, 1, M, T] · [B*kvH, hd/w, T, w] → [B*kvH, hd/w, M, w] → [B*kvH, M, hd].
  const sliced = fused(g.op('Unsqueeze', [e, g.constInt64('axis1', [1])]), g.op('Reshape', [keys(allV), b.v4]), 0);
  const ev = g.op('Reshape', [g.op('Transpose', [sliced], { perm: { ints: [0, 2, 1, 3] } }), b.q3]);
  const out = g.op('Reshape', [g.op('Div', [ev, den]), b.out5]);
  // [B,kvH,G,R,hd] → [B,R,kvH,G,hd] → [B*R, H*hd] → the N ragged rows
  const padded = g.op('Reshape', [g.op('Transpose', [out], { perm: { ints: [0, 3, 1, 2, 4] } }), g.constInt64('merge_heads', [-1, h * hd])]);
  return g.op('Unsqueeze', [g.op('Gather', [padded, b.rowGather], { axis: { i: 0 } }), g.constInt64('axis0', [0])]);
}

/**
 * Width of the V column slices the batched e·V multiplies by. MLAS blocks a GEMM's sum over K (here: keys) by a
 * stride it derives from N, and splits N across threads when a batch has fewer GEMMs than threads: with N = head
 * size, a sequence alone (B*kvH GEMMs) and in a batch could get different strides and so different sums. N <= 16
 * is never split and always gets the widest stride (1024 keys).
 */
function sliceWidth(hd: number): number {
  let w = 16;
  while (hd % w !== 0) w /= 2;
  return w;
}

/** The last slice of x along `axis`. */
function lastRow(g: OnnxGraph, x: string, axis: number): string {
  return g.op('Slice', [x, g.constInt64('minus_one', [-1]), g.constInt64('int_max', [2 ** 31 - 1]), g.constInt64(`axis${axis}`, [axis])]);
}
