import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxGraph } from '../../src/model/builder/onnx/graph.js';
import { mulberry32 } from '../../src/model/builder/sources/synthetic.js';

/**
 * A sentence-transformers directory in all-MiniLM-L6-v2's layout (tokenizer.json, onnx/model.onnx, config.json,
 * 1_Pooling/config.json) holding a random BERT, written with the project's own ONNX writer: what the embedding
 * tests and the embedding bench load, with nothing downloaded. The graph is HF's BertModel as Optimum exports it:
 * input_ids, attention_mask and token_type_ids in, last_hidden_state out.
 */
export interface BertShape {
  hidden: number;
  heads: number;
  layers: number;
  intermediate: number;
  maxPositions: number;
  /** Words beyond the letters and special tokens (a WordPiece vocabulary of at least ~90 entries results). */
  words: readonly string[];
  pooling: 'mean' | 'cls';
  seed: number;
}

export const TINY_BERT: BertShape = {
  hidden: 32,
  heads: 4,
  layers: 2,
  intermediate: 64,
  maxPositions: 128,
  words: ['the', 'of', 'and', 'to', 'in', 'is', 'it', 'that', 'what', 'how', 'document', 'cache', 'model', 'token', 'answer', 'question', 'server'],
  pooling: 'mean',
  seed: 7,
};

/** all-MiniLM-L6-v2's shape (random weights; its vocabulary padded to the real size) for throughput figures. */
export const MINILM_SHAPE: BertShape = { ...TINY_BERT, hidden: 384, heads: 12, layers: 6, intermediate: 1536, maxPositions: 512, words: fillerWords(30_400) };

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const LETTERS = 'abcdefghijklmnopqrstuvwxyz0123456789';
const PUNCTUATION = '.,?!;:\'"()-';

function fillerWords(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) out.push(`w${i.toString(36)}`);
  return out;
}

export function vocabularyOf(shape: BertShape): string[] {
  return [...SPECIALS, ...LETTERS, ...PUNCTUATION, ...[...LETTERS].map((c) => `##${c}`), ...shape.words];
}

export function writeBertExport(dir: string, shape: BertShape = TINY_BERT): void {
  const vocab = vocabularyOf(shape);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  mkdirSync(join(dir, '1_Pooling'), { recursive: true });
  const json = (name: string, value: unknown) => writeFileSync(join(dir, name), JSON.stringify(value, null, 2));
  json('tokenizer.json', wordPieceTokenizer(vocab));
  json('tokenizer_config.json', {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    model_max_length: shape.maxPositions,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
  });
  json('config.json', {
    model_type: 'bert',
    architectures: ['BertModel'],
    hidden_size: shape.hidden,
    num_attention_heads: shape.heads,
    num_hidden_layers: shape.layers,
    intermediate_size: shape.intermediate,
    max_position_embeddings: shape.maxPositions,
    type_vocab_size: 2,
    vocab_size: vocab.length,
    layer_norm_eps: 1e-12,
    hidden_act: 'gelu',
    pad_token_id: 0,
  });
  json('sentence_bert_config.json', { max_seq_length: shape.maxPositions, do_lower_case: false });
  json('1_Pooling/config.json', {
    word_embedding_dimension: shape.hidden,
    pooling_mode_cls_token: shape.pooling === 'cls',
    pooling_mode_mean_tokens: shape.pooling === 'mean',
    pooling_mode_max_tokens: false,
    pooling_mode_mean_sqrt_len_tokens: false,
  });
  bertGraph(shape, vocab.length).write(join(dir, 'onnx', 'model.onnx'), {
    irVersion: 8,
    opsets: { '': 17 },
    producer: 'lookahead-proxy-tests',
    producerVersion: '1',
  });
}

function wordPieceTokenizer(vocab: string[]) {
  const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const ids = Object.fromEntries(vocab.map((t, i) => [t, i]));
  const token = (t: string) => ({ id: t, ids: [ids[t]], tokens: [t] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((t) => special(t, ids[t])),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': token('[CLS]'), '[SEP]': token('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: ids },
  };
}


function bertGraph(shape: BertShape, vocabSize: number): OnnxGraph {
  const { hidden: h, heads, intermediate } = shape;
  const headDim = h / heads;
  const rand = mulberry32(shape.seed);
  const g = new OnnxGraph('bert');
  const weight = (name: string, dims: number[], scale = 0.2) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) * scale;
    return g.initializer(name, 'float32', dims, data);
  };
  const ones = (name: string, n: number) => g.initializer(name, 'float32', [n], new Float32Array(n).map(() => 1 + (rand() - 0.5) * 0.2));
  const layerNorm = (x: string, prefix: string) => g.op('LayerNormalization', [x, ones(`${prefix}.weight`, h), weight(`${prefix}.bias`, [h], 0.05)], { axis: { i: -1 }, epsilon: { f: 1e-12 } });
  const linear = (x: string, prefix: string, from: number, to: number) => g.op('Add', [g.op('MatMul', [x, weight(`${prefix}.weight`, [from, to])]), weight(`${prefix}.bias`, [to], 0.05)]);

  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'sequence_length']);
  const types = g.input('token_type_ids', 'int64', ['batch_size', 'sequence_length']);

  const seqLen = g.op('Squeeze', [g.op('Shape', [ids], { start: { i: 1 }, end: { i: 2 } }), g.constInt64('axis0', [0])]);
  const positions = g.op('Range', [g.constInt64('zero', [0], []), seqLen, g.constInt64('one', [1], [])]);
  const words = g.op('Gather', [weight('embeddings.word_embeddings.weight', [vocabSize, h], 0.5), ids]);
  const pos = g.op('Gather', [weight('embeddings.position_embeddings.weight', [shape.maxPositions, h], 0.5), positions]);
  const typ = g.op('Gather', [weight('embeddings.token_type_embeddings.weight', [2, h], 0.5), types]);
  let x = layerNorm(g.op('Add', [g.op('Add', [words, pos]), typ]), 'embeddings.LayerNorm');

  // [B,1,1,S]: 0 where a key is a token, a large negative number where it is padding.
  const keep = g.op('Cast', [g.op('Unsqueeze', [mask, g.constInt64('axes12', [1, 2])])], { to: { i: 1 } });
  const bias = g.op('Mul', [g.op('Sub', [g.constFloat('onef', [1], []), keep]), g.constFloat('neg', [-1e9], [])]);
  const split = g.constInt64('split_heads', [0, 0, heads, headDim]);
  const merge = g.constInt64('merge_heads', [0, 0, h]);
  const scale = g.constFloat('scale', [1 / Math.sqrt(headDim)], []);
  for (let l = 0; l < shape.layers; l++) {
    const p = `encoder.layer.${l}`;
    const heads4 = (name: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [linear(x, `${p}.attention.self.${name}`, h, h), split])], { perm: { ints: perm } });
    const q = heads4('query', [0, 2, 1, 3]);
    const k = heads4('key', [0, 2, 3, 1]);
    const v = heads4('value', [0, 2, 1, 3]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, k]), scale]), bias]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: { i: -1 } }), v]);
    const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: { ints: [0, 2, 1, 3] } }), merge]);
    x = layerNorm(g.op('Add', [x, linear(merged, `${p}.attention.output.dense`, h, h)]), `${p}.attention.output.LayerNorm`);
    const up = linear(x, `${p}.intermediate.dense`, h, intermediate);
    // GELU as BERT has it: 0.5 x (1 + erf(x / sqrt 2)).
    const erf = g.op('Erf', [g.op('Mul', [up, g.constFloat('inv_sqrt2', [Math.SQRT1_2], [])])]);
    const gelu = g.op('Mul', [g.op('Mul', [up, g.op('Add', [erf, g.constFloat('onef', [1], [])])]), g.constFloat('half', [0.5], [])]);
    x = layerNorm(g.op('Add', [x, linear(gelu, `${p}.output.dense`, intermediate, h)]), `${p}.output.LayerNorm`);
  }
  g.node('Identity', [x], ['last_hidden_state']);
  g.output('last_hidden_state', 'float32', ['batch_size', 'sequence_length', h]);
  return g;
}
