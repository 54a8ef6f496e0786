import type { LlamaConfig } from '../types.js';
import { scaleAttr } from './attention.js';
import { decoderLayer, embedTokens, LayerRopes, lmHead, rmsNorm } from './llama-graph.js';
import { OnnxGraph, type ExternalDataOptions } from './onnx/graph.js';
import type { BuildOptions } from './options.js';
import { isSlidingLayer } from './rope.js';
import type { WeightSource } from './source.js';
import { windowBias } from './window.js';

/**
 * The same decoder in the HF Optimum / transformers.js layout: a 2-D padding mask (the causal mask is built in
 * the graph), past_key_values.{i}.key/value [1,kvH,P,hd] in, logits and present.{i}.key/value [1,kvH,T,hd] out.
 * Chain decoding only; this is what other tools can load.
 */
export function buildStandardGraph(src: WeightSource, options: BuildOptions, external: ExternalDataOptions | null): OnnxGraph {
  const c = src.config;
  const g = new OnnxGraph('llama', external);
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const padMask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const pos = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const past: [string, string][] = [];
  const pastDims = ['batch_size', c.numKvHeads, 'past_sequence_length', c.headDim];
  for (let i = 0; i < c.numLayers; i++) {
    past.push([g.input(`past_key_values.${i}.key`, 'float32', pastDims), g.input(`past_key_values.${i}.value`, 'float32', pastDims)]);
  }

  const bias = causalBias(g, ids, padMask);
  const local = c.slidingWindow === undefined ? bias : windowBias(g, bias, pos, c.slidingWindow);
  const embed = g.initializer('model.embed_tokens.weight', 'float32', [c.vocabSize, c.hiddenSize], src.tensor('model.embed_tokens.weight'));
  let x = embedTokens(g, c, embed, ids);
  const ropes = new LayerRopes(g, c);
  const presentDims = ['batch_size', c.numKvHeads, 'total_sequence_length', c.headDim];
  const scale = scaleAttr(c.attentionScale);
  for (let i = 0; i < c.numLayers; i++) {
    const layerBias = isSlidingLayer(c, i) ? local : bias;
    x = decoderLayer(g, src, options, i, x, pos, ropes.of(i), (q, k, v) => {
      const [y] = g.node('Attention', [q, k, v, layerBias, past[i][0], past[i][1]], [g.fresh('Attention'), `present.${i}.key`, `present.${i}.value`], {
        q_num_heads: { i: c.numHeads },
        kv_num_heads: { i: c.numKvHeads },
        ...scale,
      });
      return y;
    });
    g.output(`present.${i}.key`, 'float32', presentDims);
    g.output(`present.${i}.value`, 'float32', presentDims);
  }
  const h = rmsNorm(g, src, x, 'model.norm.weight', c.rmsNormEps);
  lmHead(g, src, options, h, embed, 'logits');
  g.output('logits', 'float32', ['batch_size', 'sequence_length', c.vocabSize]);
  return g;
}

/** [1,1,S,T] additive bias: query s (at position P+s) sees key t iff t <= P+s and attention_mask[t] = 1. */
function causalBias(g: OnnxGraph, ids: string, padMask: string): string {
  const t = g.op('Shape', [padMask], { start: { i: 1 }, end: { i: 2 } });
  const s = g.op('Shape', [ids], { start: { i: 1 }, end: { i: 2 } });
  const axis0 = g.constInt64('axis0', [0]);
  const scalar = (x: string) => g.op('Squeeze', [x, axis0]);
  const zero = g.constInt64('zero', [0], []);
  const one = g.constInt64('one', [1], []);
  const p = scalar(g.op('Sub', [t, s]));
  const rows = g.op('Unsqueeze', [g.op('Add', [g.op('Range', [zero, scalar(s), one]), p]), g.constInt64('axis1', [1])]);
  const cols = g.op('Range', [zero, scalar(t), one]);
  const allowed = g.op('And', [g.op('LessOrEqual', [cols, rows]), g.op('Cast', [padMask], { to: { i: 9 } })]);
  const bias = g.op('Where', [allowed, g.constFloat('open', [0], []), g.constFloat('blocked', [-Infinity], [])]);
  return g.op('Unsqueeze', [bias, g.constInt64('axes01', [0, 1])]);
}

/** An HF-style config.json so that transformers.js and friends recognise the export. */
export function hfConfig(c: LlamaConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tiedEmbeddings,
    attention_bias: c.attentionBias,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    use_cache: true,
    torch_dtype: 'float32',
  };
}
