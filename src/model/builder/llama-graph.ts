import type { LlamaConfig } from '../types.js';
import { attention, attentionContext } from './attention.js';
import { boundary, headOutputs, kvBoundary } from './graph-boundary.js';
import { concatRows, linear } from './linear.js';
import { OnnxGraph, type ExternalDataOptions } from './onnx/graph.js';
import type { BuildOptions } from './options.js';
import type { WeightSource } from './source.js';

/** Opsets the emitted graphs import. ONNX Attention and RMSNormalization need opset 23 (IR 10+). */
export const OPSETS = { '': 23, 'com.microsoft': 1 };
export const IR_VERSION = 10;

/** Names of the tree-layout graph's I/O (DESIGN.md §3). */
export const io = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  bias: 'attention_bias',
  logits: 'logits',
  ...boundary,
};

/**
 * A Llama-family decoder in the tree layout: the caller supplies positions and an additive bias over past + new,
 * and owns the KV cache (past rows in, new rows out, keys after RoPE) unless options.kv puts it on the device.
 */
export function buildLlamaGraph(src: WeightSource, options: BuildOptions, external: ExternalDataOptions | null): OnnxGraph {
  const c = src.config;
  const g = new OnnxGraph('llama', external);
  const kvD = c.numKvHeads * c.headDim;
  const ids = g.input(io.inputIds, 'int64', [1, 'S']);
  const pos = g.input(io.positionIds, 'int64', [1, 'S']);
  const bias = g.input(io.bias, 'float32', [1, 1, 'S', 'T']);
  const kv = kvBoundary(g, options.kv ?? 'host', c.numLayers, kvD);
  const out = headOutputs(g, options.kv ?? 'host', io.logits, c.vocabSize);

  const embed = g.initializer('model.embed_tokens.weight', 'float32', [c.vocabSize, c.hiddenSize], src.tensor('model.embed_tokens.weight'));
  let x = g.op('Gather', [embed, ids], { axis: { i: 0 } });
  const rope = ropeCaches(g, c);
  const ctx = attentionContext(g, options.attention, bias);

  for (let i = 0; i < c.numLayers; i++) {
    x = decoderLayer(g, src, options, i, x, pos, rope, (q, k, v) => attention(g, ctx, c, q, k, v, ...kv(i, k, v)));
  }

  const h = rmsNorm(g, src, x, 'model.norm.weight', c.rmsNormEps);
  lmHead(g, src, options, h, embed, out.logits);
  out.finish();
  return g;
}

export interface RopeCaches {
  cos: string;
  sin: string;
}

/** cos/sin tables [maxPositions, headDim/2] shared by both RoPE styles; they differ only in which lanes pair up. */
export function ropeCaches(g: OnnxGraph, c: LlamaConfig): RopeCaches {
  const half = c.headDim / 2;
  const cos = new Float32Array(c.maxPositions * half);
  const sin = new Float32Array(c.maxPositions * half);
  for (let p = 0; p < c.maxPositions; p++) {
    for (let j = 0; j < half; j++) {
      const angle = p * Math.pow(c.ropeTheta, (-2 * j) / c.headDim);
      cos[p * half + j] = Math.cos(angle);
      sin[p * half + j] = Math.sin(angle);
    }
  }
  return {
    cos: g.initializer('rope.cos', 'float32', [c.maxPositions, half], cos),
    sin: g.initializer('rope.sin', 'float32', [c.maxPositions, half], sin),
  };
}

function rope(g: OnnxGraph, c: LlamaConfig, x: string, pos: string, r: RopeCaches, heads: number): string {
  // Contrib-op input order: (input, position_ids, cos, sin); ONNX opset 23 uses (X, cos, sin, position_ids).
  return g.op(
    'RotaryEmbedding',
    [x, pos, r.cos, r.sin],
    { interleaved: { i: c.ropeStyle === 'interleaved' ? 1 : 0 }, num_heads: { i: heads } },
    'com.microsoft',
  );
}

export function rmsNorm(g: OnnxGraph, src: WeightSource, x: string, weight: string, eps: number): string {
  const scale = g.initializer(weight, 'float32', [src.config.hiddenSize], src.tensor(weight));
  return g.op('SimplifiedLayerNormalization', [x, scale], { axis: { i: -1 }, epsilon: { f: eps } });
}

/** Attention over q [1,S,H*hd] and the new k/v [1,S,kvH*hd] (k after RoPE), however the layout keeps its cache. */
export type Attend = (q: string, k: string, v: string) => string;

/** One pre-norm decoder block; returns the residual stream after it. */
export function decoderLayer(
  g: OnnxGraph,
  src: WeightSource,
  options: BuildOptions,
  i: number,
  x: string,
  pos: string,
  r: RopeCaches,
  attend: Attend,
): string {
  const c = src.config;
  const p = `model.layers.${i}`;
  const qD = c.numHeads * c.headDim;
  const kvD = c.numKvHeads * c.headDim;
  const h = rmsNorm(g, src, x, `${p}.input_layernorm.weight`, c.rmsNormEps);

  // One fused QKV MatMul: a single pass over the activations instead of three.
  const proj = (n: string) => src.tensor(`${p}.self_attn.${n}_proj.weight`);
  const biasOf = (n: string) => src.tensor(`${p}.self_attn.${n}_proj.bias`);
  const qkvBias = c.attentionBias ? concatRows([biasOf('q'), biasOf('k'), biasOf('v')]) : undefined;
  const qkv = linear(g, h, `${p}.self_attn.qkv_proj`, concatRows([proj('q'), proj('k'), proj('v')]), qD + 2 * kvD, c.hiddenSize, options.dtype, qkvBias);
  const [q0, k0, v] = g.node('Split', [qkv, g.constInt64('qkv_split', [qD, kvD, kvD])], 3, { axis: { i: -1 } });
  const q = rope(g, c, q0, pos, r, c.numHeads);
  const k = rope(g, c, k0, pos, r, c.numKvHeads);

  const att = attend(q, k, v);
  const o = linear(g, att, `${p}.self_attn.o_proj`, proj('o'), c.hiddenSize, qD, options.dtype);
  const x1 = g.op('Add', [x, o]);

  const h2 = rmsNorm(g, src, x1, `${p}.post_attention_layernorm.weight`, c.rmsNormEps);
  const mlp = (n: string) => src.tensor(`${p}.mlp.${n}_proj.weight`);
  const f = c.intermediateSize;
  const gu = linear(g, h2, `${p}.mlp.gate_up_proj`, concatRows([mlp('gate'), mlp('up')]), 2 * f, c.hiddenSize, options.dtype);
  const [gate, up] = g.node('Split', [gu, g.constInt64('gate_up_split', [f, f])], 2, { axis: { i: -1 } });
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
  const down = linear(g, act, `${p}.mlp.down_proj`, mlp('down'), c.hiddenSize, f, options.dtype);
  return g.op('Add', [x1, down]);
}

/**
 * logits = h · Wᵀ. Tied heads reuse the fp32 embedding through Gemm(transB) so the matrix is stored once;
 * untied heads follow the weight dtype.
 */
export function lmHead(g: OnnxGraph, src: WeightSource, options: BuildOptions, h: string, embed: string, out: string): void {
  const c = src.config;
  if (c.tiedEmbeddings || options.dtype === 'fp32') {
    const w = c.tiedEmbeddings ? embed : g.initializer('lm_head.weight', 'float32', [c.vocabSize, c.hiddenSize], src.tensor('lm_head.weight'));
    const flat = g.op('Reshape', [h, g.constInt64('flat_shape', [-1, c.hiddenSize])]);
    const y = g.op('Gemm', [flat, w], { transB: { i: 1 } });
    g.node('Unsqueeze', [y, g.constInt64('axis0', [0])], [out]);
    return;
  }
  const y = linear(g, h, 'lm_head', src.tensor('lm_head.weight'), c.vocabSize, c.hiddenSize, options.dtype);
  g.node('Identity', [y], [out]);
}
