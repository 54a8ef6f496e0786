import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { InvalidRequestError, ModelLoadError } from '../../errors.js';
import { createSession } from '../runtime/session.js';
import { readEmbeddingExport, type EmbeddingExport } from './export-dir.js';
import { poolBatch } from './pooling.js';

/** Inputs one forward takes at most, and padded tokens (inputs × longest) it takes at most. */
const BATCH_INPUTS = 32;
const BATCH_TOKENS = 16_384;

/** One input of an embeddings request: text, or token ids of this model's own vocabulary (as vLLM takes them). */
export type EmbeddingInput = string | number[];

export interface EncoderInfo {
  dimensions: number;
  maxTokens: number;
  pooling: EmbeddingExport['pooling'];
}

/**
 * A sentence-embedding model: a BERT-family ONNX export and its tokenizer, pooled and normalized as
 * sentence-transformers does. Inputs are sorted by length and run in padded batches; each result lands at its
 * input's place.
 */
export class SentenceEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly tokenizer: Tokenizer,
    private readonly exported: EmbeddingExport,
    private readonly vocabSize: number,
    private readonly output: string,
    private readonly takesTokenTypes: boolean,
  ) {}

  static async load(dir: string, threads: number): Promise<SentenceEncoder> {
    const exported = readEmbeddingExport(dir);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(exported.tokenizerJson, exported.tokenizerConfig);
    } catch (err) {
      throw new ModelLoadError(`embedding model ${dir}: unsupported tokenizer.json (${(err as Error).message})`);
    }
    const { session } = await createSession(exported.modelPath, { executionProvider: 'cpu', threads });
    for (const name of ['input_ids', 'attention_mask']) {
      if (!session.inputNames.includes(name)) throw new ModelLoadError(`embedding model ${dir}: the graph has no ${name} input (inputs: ${session.inputNames.join(', ')})`);
    }
    // Optimum names BERT's token states last_hidden_state; some exports call their only output something else.
    const output = session.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : session.outputNames[0];
    let vocabSize = 0;
    for (const id of tokenizer.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
    return new SentenceEncoder(session, tokenizer, exported, vocabSize, output, session.inputNames.includes('token_type_ids'));
  }

  get info(): EncoderInfo {
    return { dimensions: this.exported.dimensions, maxTokens: this.exported.maxTokens, pooling: this.exported.pooling };
  }

  /** Token ids per input, cut to the model's length; the last id (BERT's [SEP]) is kept when text is cut. */
  tokenize(inputs: readonly EmbeddingInput[]): number[][] {
    const max = this.exported.maxTokens;
    return inputs.map((input, i) => {
      if (typeof input !== 'string') {
        const bad = input.find((t) => t >= this.vocabSize);
        if (bad !== undefined) throw new InvalidRequestError(`token id ${bad} is outside the embedding model's vocabulary (size ${this.vocabSize})`, inputs.length > 1 ? `input[${i}]` : 'input');
        return input.length > max ? input.slice(0, max) : input;
      }
      const ids = this.tokenizer.encode(input).ids;
      return ids.length > max ? [...ids.slice(0, max - 1), ids[ids.length - 1]] : ids;
    });
  }

  /** Unit vectors, input after input in one array, and the tokens they took (for usage). */
  async embed(inputs: readonly EmbeddingInput[]): Promise<{ vectors: Float32Array; tokens: number }> {
    const ids = this.tokenize(inputs);
    const dim = this.exported.dimensions;
    const vectors = new Float32Array(ids.length * dim);
    const order = ids.map((_, i) => i).sort((a, b) => ids[a].length - ids[b].length);
    let tokens = 0;
    for (let start = 0; start < order.length; ) {
      let end = start + 1;
      // Sorted by length, so the last input taken is the longest: the padded size is count × its length.
      while (end < order.length && end - start < BATCH_INPUTS && (end - start + 1) * ids[order[end]].length <= BATCH_TOKENS) end++;
      const batch = order.slice(start, end).map((i) => ids[i]);
      await this.forward(batch, vectors, order.slice(start, end).map((i) => i * dim));
      for (const row of batch) tokens += row.length;
      start = end;
    }
    return { vectors, tokens };
  }

  private async forward(rows: number[][], out: Float32Array, offsets: number[]): Promise<void> {
    const seq = Math.max(...rows.map((r) => r.length));
    const n = rows.length;
    const inputIds = new BigInt64Array(n * seq);
    const mask = new BigInt64Array(n * seq);
    rows.forEach((row, b) => {
      for (let s = 0; s < row.length; s++) {
        inputIds[b * seq + s] = BigInt(row[s]);
        mask[b * seq + s] = 1n;
      }
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', inputIds, [n, seq]),
      attention_mask: new ort.Tensor('int64', mask, [n, seq]),
    };
    if (this.takesTokenTypes) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(n * seq), [n, seq]);
    const result = await this.session.run(feeds, [this.output]);
    const states = result[this.output];
    const dim = this.exported.dimensions;
    if (states.dims.length !== 3 || states.dims[2] !== dim) {
      throw new Error(`the embedding graph's ${this.output} has shape [${states.dims.join(', ')}], expected [${n}, ${seq}, ${dim}]`);
    }
    poolBatch(states.data as Float32Array, n, seq, dim, rows.map((r) => r.length), this.exported.pooling, out, offsets);
    states.dispose();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
