import type { LlamaConfig } from '../types.js';
import { attention, attentionContext, oldRows, slotsContext, withSlotBias, type AttentionContext } from './attention.js';
import { boundary, headOutputs, kvBoundary } from './graph-boundary.js';
import { concatRows, linear } from './linear.js';
import { OnnxGraph, type Attr, type ExternalDataOptions } from './onnx/graph.js';
import type { BuildOptions } from './options.js';
import { isSlidingLayer, layerRope, ropeCaches, type RopeCaches } from './rope.js';
import type { WeightSource } from './source.js';
import { windowBias } from './window.js';

/** Opsets the emitted graphs import. ONNX Attention and RMSNormalization need opset 23 (IR 10+). */
export const OPSETS = { '': 23, 'com.microsoft': 1 };
export const IR_VERSION = 10;

/**
 * Sequences one batched forward carries. Each slot costs inputs (its own past per layer) and a few ops even when
 * empty, and past 8 sequences of short drafts a CPU forward is compute-bound anyway.
 */
export const BATCH_SLOTS = 8;

/** Names of the tree-layout graph's I/O (DESIGN.md §3). */
export const io = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  bias: 'attention_bias',
  /** Batched graphs: new tokens per slot, and each slot's bias (sliding-window models: also with the window applied). */
  slotSizes: 'slot_sizes',
  slotBias: (s: number) => `attention_bias.${s}`,
  slotLocalBias: (s: number) => `attention_bias_local.${s}`,
  slotOnes: (s: number) => `slot_ones.${s}`,
  slotActive: (s: number) => `slot_active.${s}`,
  logits: 'logits',
  ...boundary,
};

/**
 * A Llama-family decoder in the tree layout: the caller supplies positions and an additive bias over past + new,
 * and owns the KV cache (past rows in, new rows out, keys after RoPE) unless options.kv puts it on the device.
 * A batched graph has `slots` slots; with one, it is the lone graph: slot 0's inputs only, for forwards of one
 * sequence (see build.ts LONE_FILE).
 */
export function buildLlamaGraph(src: WeightSource, options: BuildOptions, external: ExternalDataOptions | null, slots = BATCH_SLOTS): OnnxGraph {
  const c = src.config;
  const g = new OnnxGraph('llama', external);
  const kvD = c.numKvHeads * c.headDim;
  const placement = options.kv ?? 'host';
  const ids = g.input(io.inputIds, 'int64', [1, 'S']);
  const pos = g.input(io.positionIds, 'int64', [1, 'S']);
  const kv = kvBoundary(g, isBatched(options) ? 'batch' : placement, c.numLayers, kvD, slots);
  const out = headOutputs(g, placement, io.logits, c.vocabSize);

  const embed = g.initializer('model.embed_tokens.weight', 'float32', [c.vocabSize, c.hiddenSize], src.tensor('model.embed_tokens.weight'));
  let x = embedTokens(g, c, embed, ids);
  const ropes = new LayerRopes(g, c);
  let full: AttentionContext;
  let local: AttentionContext;
  if (isBatched(options)) {
    const each = (make: (s: number) => string, from = 0) => Array.from({ length: slots }, (_, s) => (s < from ? '' : make(s)));
    const biases = (name: (s: number) => string) => each((s) => g.input(name(s), 'float32', [1, `R${s}`, `T${s}`]));
    const old = oldRows(g, io.oldPastKey(0));
    full = slotsContext(g, old, {
      sizes: slots > 1 ? g.input(io.slotSizes, 'int64', [slots]) : '',
      bias: biases(io.slotBias),
      ones: each((s) => g.input(io.slotOnes(s), 'float32', [`T${s}`, 16])),
      active: each((s) => g.input(io.slotActive(s), 'bool', [1]), 1),
    });
    local = c.slidingWindow === undefined ? full : withSlotBias(g, old, full, biases(io.slotLocalBias));
  } else {
    const bias = g.input(io.bias, 'float32', [1, 1, 'S', 'T']);
    full = attentionContext(g, options.attention, bias, c);
    // Cache row r holds position r (the runtime keeps accepted rows in place), so the window derives from positions.
    local = c.slidingWindow === undefined ? full : attentionContext(g, options.attention, windowBias(g, bias, pos, c.slidingWindow), c);
  }

  for (let i = 0; i < c.numLayers; i++) {
    const ctx = isSlidingLayer(c, i) ? local : full;
    x = decoderLayer(g, src, options, i, x, pos, ropes.of(i), (q, k, v) => attention(g, ctx, c, q, k, v, ...kv(i, k, v)));
  }

  const h = rmsNorm(g, src, out.select(x), 'model.norm.weight', c.rmsNormEps);
  lmHead(g, src, options, h, embed, out.logits);
  out.finish();
  return g;
}

/**
 * Whether the graph takes several sequences per forward (the runtime's batched layout): 'exact' attention with a
 * host cache, the CPU default. Device K/V and the fused attention ops keep one sequence per forward.
 */
export function isBatched(options: BuildOptions): boolean {
  return options.attention === 'exact' && (options.kv ?? 'host') === 'host';
}

/** Token embeddings, times the family's scale (Gemma multiplies by sqrt(hidden)). */
export function embedTokens(g: OnnxGraph, c: LlamaConfig, embed: string, ids: string): string {
  const x = g.op('Gather', [embed, ids], { axis: { i: 0 } });
  return c.embeddingScale === undefined ? x : g.op('Mul', [x, g.constFloat('embed_scale', [c.embeddingScale], [])]);
}

/** The RoPE tables each layer uses, built once per kind. */
export class LayerRopes {
  private readonly caches = new Map<'global' | 'sliding', RopeCaches>();
  constructor(
    private readonly g: OnnxGraph,
    private readonly c: LlamaConfig,
  ) {}

  of(layer: number): RopeCaches | null {
    const kind = layerRope(this.c, layer);
    if (kind === 'none') return null;
    let r = this.caches.get(kind);
    if (r === undefined) this.caches.set(kind, (r = ropeCaches(this.g, this.c, kind)));
    return r;
  }
}

function rope(g: OnnxGraph, c: LlamaConfig, x: string, pos: string, r: RopeCaches | null, heads: number): string {
  if (r === null) return x;
  // Contrib-op input order: (input, position_ids, cos, sin); ONNX opset 23 uses (X, cos, sin, position_ids).
  const partial: Record<string, Attr> = r.dim === c.headDim ? {} : { rotary_embedding_dim: { i: r.dim } };
  return g.op(
    'RotaryEmbedding',
    [x, pos, r.cos, r.sin],
    { interleaved: { i: c.ropeStyle === 'interleaved' ? 1 : 0 }, num_heads: { i: heads }, ...partial },
    'com.microsoft',
  );
}

export function rmsNorm(g: OnnxGraph, src: WeightSource, x: string, weight: string, eps: number, size = src.config.hiddenSize): string {
  const scale = g.initializer(weight, 'float32', [size], src.tensor(weight));
  return g.op('SimplifiedLayerNormalization', [x, scale], { axis: { i: -1 }, epsilon: { f: eps } });
}

/** RMSNorm of each head of x [1,S,heads*hd] on its own (Qwen3 / Gemma 3 q_norm, k_norm). */
function headNorm(g: OnnxGraph, src: WeightSource, x: string, weight: string, heads: number): string {
  const c = src.config;
  const split = g.op('Reshape', [x, g.constInt64('heads_shape', [1, 0, heads, c.headDim])]);
  const normed = rmsNorm(g, src, split, weight, c.rmsNormEps, c.headDim);
  return g.op('Reshape', [normed, g.constInt64('merge_shape', [1, 0, heads * c.headDim])]);
}

/** q, k, v and gate, up stored fused (Phi-3) or apart; the graph multiplies by the fused matrix either way. */
function fused(src: WeightSource, name: string, parts: string[]): Float32Array {
  return src.has(name) ? src.tensor(name) : concatRows(parts.map((p) => src.tensor(p)));
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
  r: RopeCaches | null,
  attend: Attend,
): string {
  const c = src.config;
  const p = `model.layers.${i}`;
  const qD = c.numHeads * c.headDim;
  const kvD = c.numKvHeads * c.headDim;
  const norm = (name: string, input: string) => rmsNorm(g, src, input, `${p}.${name}.weight`, c.rmsNormEps);
  const h = norm('input_layernorm', x);

  // One fused QKV MatMul: a single pass over the activations instead of three.
  const attn = (n: string) => `${p}.self_attn.${n}_proj`;
  const qkvBias = c.attentionBias ? concatRows(['q', 'k', 'v'].map((n) => src.tensor(`${attn(n)}.bias`))) : undefined;
  const qkvWeight = fused(src, `${attn('qkv')}.weight`, ['q', 'k', 'v'].map((n) => `${attn(n)}.weight`));
  const qkv = linear(g, h, attn('qkv'), qkvWeight, qD + 2 * kvD, c.hiddenSize, options, qkvBias);
  let [q, k, v] = g.node('Split', [qkv, g.constInt64('qkv_split', [qD, kvD, kvD])], 3, { axis: { i: -1 } });
  if (c.qkNorm) {
    q = headNorm(g, src, q, `${p}.self_attn.q_norm.weight`, c.numHeads);
    k = headNorm(g, src, k, `${p}.self_attn.k_norm.weight`, c.numKvHeads);
  }
  const att = attend(rope(g, c, q, pos, r, c.numHeads), rope(g, c, k, pos, r, c.numKvHeads), v);
  let o = linear(g, att, attn('o'), src.tensor(`${attn('o')}.weight`), c.hiddenSize, qD, options);
  if (c.sandwichNorms) o = norm('post_attention_layernorm', o);
  const x1 = g.op('Add', [x, o]);

  const h2 = norm(c.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm', x1);
  const mlp = (n: string) => `${p}.mlp.${n}_proj`;
  const f = c.intermediateSize;
  const gu = linear(g, h2, mlp('gate_up'), fused(src, `${mlp('gate_up')}.weight`, [`${mlp('gate')}.weight`, `${mlp('up')}.weight`]), 2 * f, c.hiddenSize, options);
  const [gate, up] = g.node('Split', [gu, g.constInt64('gate_up_split', [f, f])], 2, { axis: { i: -1 } });
  const activated = c.hiddenAct === 'gelu_tanh' ? g.op('Gelu', [gate], { approximate: { s: 'tanh' } }) : g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
  let down = linear(g, g.op('Mul', [activated, up]), mlp('down'), src.tensor(`${mlp('down')}.weight`), c.hiddenSize, f, options);
  if (c.sandwichNorms) down = norm('post_feedforward_layernorm', down);
  return g.op('Add', [x1, down]);
}

/**
 * logits = h · Wᵀ. Under q8/q4 the head follows the weight dtype even when tied: the lookup keeps the fp32
 * embedding, and the head gets a quantized copy of it, since each token reads the whole head (0.5–1 GB in fp32 for
 * a 128k–152k vocabulary) and only one row of the table. fp32/fp16 tied heads reuse the fp32 embedding through
 * Gemm(transB), so the matrix is stored once.
 */
export function lmHead(g: OnnxGraph, src: WeightSource, options: BuildOptions, h: string, embed: string, out: string): void {
  const c = src.config;
  const quantized = options.dtype === 'q8' || options.dtype === 'q4';
  let y: string;
  if (quantized && c.tiedEmbeddings) {
    y = linear(g, h, 'lm_head', src.tensor('model.embed_tokens.weight'), c.vocabSize, c.hiddenSize, options);
  } else if (c.tiedEmbeddings || options.dtype === 'fp32') {
    const w = c.tiedEmbeddings ? embed : g.initializer('lm_head.weight', 'float32', [c.vocabSize, c.hiddenSize], src.tensor('lm_head.weight'));
    const flat = g.op('Reshape', [h, g.constInt64('flat_shape', [-1, c.hiddenSize])]);
    y = g.op('Unsqueeze', [g.op('Gemm', [flat, w], { transB: { i: 1 } }), g.constInt64('axis0', [0])]);
  } else {
    y = linear(g, h, 'lm_head', src.tensor('lm_head.weight'), c.vocabSize, c.hiddenSize, options);
  }
  if (c.finalLogitSoftcap !== undefined) {
    const cap = c.finalLogitSoftcap;
    y = g.op('Mul', [g.op('Tanh', [g.op('Mul', [y, g.constFloat('inv_softcap', [1 / cap], [])])]), g.constFloat('softcap', [cap], [])]);
  }
  g.node('Identity', [y], [out]);
}
