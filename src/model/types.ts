/**
 * The model contract (DESIGN.md §3): what the engine needs from a loaded model and nothing more.
 */
export type RopeStyle = 'half' | 'interleaved';

/** A Llama-family decoder, whatever its weight source (HF safetensors, GGUF, synthetic). */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** 'half' = HF rotate_half; 'interleaved' = llama2.c / GGUF pairs (x0,x1),(x2,x3)... */
  ropeStyle: RopeStyle;
  tiedEmbeddings: boolean;
  /** Qwen2-style biases on the q/k/v projections. */
  attentionBias: boolean;
  maxPositions: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

export interface ModelInfo {
  id: string;
  /** Tokens the KV cache may hold: prompt + generated + one draft. */
  contextLength: number;
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** False for foreign exports with a 2-D attention_mask: they verify single-branch (chain) drafts only. */
  treeMask: boolean;
  /** 'cpu', 'cuda' or 'webgpu': the execution provider actually in use. */
  executionProvider: string;
}

export interface ForwardInput {
  /** S new token ids. */
  tokens: Int32Array;
  /** Their absolute positions (past length + depth in a draft tree). */
  positions: Int32Array;
  /**
   * Additive attention bias, row-major [S, past + S]: 0 where attention is allowed, -Infinity elsewhere.
   * null means plain causal attention over past + new.
   */
  mask: Float32Array | null;
}

/**
 * One sequence's KV cache on a model. Rows are token positions in cache order.
 * `forward` appends the S new rows; `keep`/`truncate` drop what was not accepted.
 */
export interface Sequence {
  readonly length: number;
  /** Logits row-major [S, vocab]. Valid until the next forward on this sequence. */
  forward(input: ForwardInput): Promise<Float32Array>;
  /** After this, rows base..base+rows.length-1 hold the former rows `rows` (ascending, each >= base); length = base + rows.length. */
  keep(base: number, rows: ArrayLike<number>): void;
  truncate(length: number): void;
  /** Releases the KV memory. */
  dispose(): void;
}

export interface LoadedModel {
  readonly info: ModelInfo;
  newSequence(): Sequence;
  dispose(): Promise<void>;
}
