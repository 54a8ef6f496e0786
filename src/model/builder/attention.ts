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
 * `bias` is the additive mask [1,1,S,T]; for onnx/mha it carries one extra row (see padQueries), [1,1,S+1,T].
 * seqlensK/totalLength exist only for GQA.
 */
export interface AttentionContext {
  kind: AttentionKind;
  bias: string;
  seqlensK?: string;
  totalLength?: string;
}

/** The `scale` attribute of every attention op here, when the family sets one. */
export function scaleAttr(scale: number | undefined): Record<string, Attr> {
  return scale === undefined ? {} : { scale: { f: scale } };
}

export function attentionContext(g: OnnxGraph, kind: AttentionKind, bias: string): AttentionContext {
  if (kind !== 'gqa') return { kind, bias: g.op('Concat', [bias, lastRow(g, bias, 2)], { axis: { i: 2 } }) };
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
  const k = g.op('Concat', [pastK, kNew], { axis: { i: 1 } });
  const v = g.op('Concat', [pastV, vNew], { axis: { i: 1 } });
  const padded = g.op('Concat', [q, lastRow(g, q, 1)], { axis: { i: 1 } });
  const unpad = (y: string) => g.op('Slice', [y, g.constInt64('zero', [0]), g.constInt64('minus_one', [-1]), g.constInt64('axis1', [1])]);
  if (ctx.kind === 'onnx') {
    return unpad(g.op('Attention', [padded, k, v, ctx.bias], { q_num_heads: { i: h }, kv_num_heads: { i: kvH }, ...scale }));
  }
  // MultiHeadAttention needs one kv head per query head: repeat each kv head h/kvH times, as HF repeat_kv does.
  const expand = (x: string) => {
    if (kvH === h) return x;
    const split = g.op('Reshape', [x, g.constInt64('kv_split', [1, 0, kvH, 1, hd])]);
    const wide = g.op('Expand', [split, g.constInt64('kv_repeat', [1, 1, 1, h / kvH, 1])]);
    return g.op('Reshape', [wide, g.constInt64('kv_merge', [1, 0, h * hd])]);
  };
  return unpad(g.op('MultiHeadAttention', [padded, expand(k), expand(v), '', '', ctx.bias], { num_heads: { i: h }, ...scale }, 'com.microsoft'));
}

/**
 * The last slice along `axis` of x, to pad the queries (and the bias rows) by one duplicate row.
 * Why: with a single query the CPU kernels multiply probabilities by V through MLAS's M = 1 GEMV, which sums in
 * another order than the GEMM that S > 1 queries get. Then a token's logits depend on how many tokens share its
 * forward; on q8/q4 the last-bit difference then flips an int8 activation rounding in MatMulNBits and a verified
 * draft can change a near-tie. With at least two query rows every forward takes the GEMM and each row's result is
 * bit for bit the same whatever else is in the forward. The duplicate row costs one query's attention.
 */
function lastRow(g: OnnxGraph, x: string, axis: number): string {
  return g.op('Slice', [x, g.constInt64('minus_one', [-1]), g.constInt64('int_max', [2 ** 31 - 1]), g.constInt64(`axis${axis}`, [axis])]);
}
