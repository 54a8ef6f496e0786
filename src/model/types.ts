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
  /** The family details below are absent for a plain Llama decoder. */
  /** Rotary dims per head, the first ones (Phi's partial rotary); default headDim. */
  ropeDim?: number;
  /** Divisor of each rotary frequency, ropeDim/2 of them (llama3, linear and LongRoPE scaling). */
  ropeFreqDivisors?: number[];
  /** LongRoPE: the divisors used instead when maxPositions exceeds ropeOriginalMaxPositions. */
  ropeLongFreqDivisors?: number[];
  ropeOriginalMaxPositions?: number;
  /** cos/sin multiplier (LongRoPE attention factor). */
  ropeAttentionFactor?: number;
  /** Layers that apply no RoPE (SmolLM3's NoPE layers). */
  noRopeLayers?: number[];
  /** Sliding-window attention: a query at position p sees keys at positions p - window + 1 .. p. */
  slidingWindow?: number;
  /** Layers that use the window (Gemma 3's local layers); all layers when absent. */
  slidingLayers?: number[];
  /** RoPE base of the sliding layers, which then use plain (unscaled) RoPE (Gemma 3). */
  slidingRopeTheta?: number;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3): self_attn.{q,k}_norm.weight [headDim]. */
  qkNorm?: boolean;
  /** Embeddings are multiplied by this (Gemma: sqrt(hidden)). */
  embeddingScale?: number;
  /** Gemma's extra norms: post_attention_layernorm on the attention output, pre/post_feedforward_layernorm around the MLP. */
  sandwichNorms?: boolean;
  /** Gated MLP activation: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU); default silu. */
  hiddenAct?: 'silu' | 'gelu_tanh';
  /** Softmax scale of q·k; default 1/sqrt(headDim). */
  attentionScale?: number;
  /** logits = cap · tanh(logits / cap). */
  finalLogitSoftcap?: number;
  /** Phi-3: q/k/v and gate/up stored fused as self_attn.qkv_proj and mlp.gate_up_proj. */
  fusedProjections?: boolean;
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
  /** 'device' when K/V stays in device memory between steps (GPU EPs); 'host' when the runtime owns it. */
  kvPlacement: 'host' | 'device';
  /** K/V bytes one cached token takes (all layers, keys and values): what admission by K/V memory counts. */
  kvBytesPerToken: number;
  /**
   * The LM head's share of a token's multiply-adds (vocab × hidden over the whole forward's), where known: what
   * computing the outputs of a row nobody strictly needs costs (a quarter on a 150k vocabulary, 3 % on a 4k one).
   */
  headShare?: number;
  /** Sequences one `forwardBatch` runs in a single forward; 1 when items run one after another. */
  maxBatch: number;
  /** Best ids per row an ids forward can bring back with the argmax (`forwardIds(input, true)`); absent = none. */
  topIds?: number;
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
  /**
   * The first row whose outputs the caller reads (default 0). A forward's logits, ids and best ids hold its last
   * R rows, R ≥ S - headFrom (a model may compute them all): row r is at r - (S - R), R told by the result's
   * length. A prompt chunk reads its last row only; the LM head of every row is a quarter of a chunk's work on a
   * 150k vocabulary.
   */
  headFrom?: number;
}

/** Bytes a sequence moved between host and device memory, cumulative; both 0 on the CPU EP. */
export interface TransferCounters {
  hostToDevice: number;
  deviceToHost: number;
}

/** Where a sequence's K/V lives, for checks: the location of every cache tensor and the host bytes it holds. */
export interface KvResidency {
  /** 'cpu' or 'gpu-buffer' per layer K and V tensor (empty before the first forward on the device path). */
  locations: string[];
  /** Host memory allocated for this sequence's K/V (0 on the device path). */
  hostBytes: number;
}

/**
 * One sequence's KV cache on a model. Rows are token positions in cache order.
 * A forward appends the S new rows; `keep`/`truncate` drop what was not accepted. A step that only needs the
 * greedy choice of each row calls `forwardIds` (the argmax comes from the graph, no logits move); a step that
 * samples, penalizes or masks calls `forward` for the logits.
 */
export interface Sequence {
  readonly length: number;
  /** Logits row-major [R, vocab] (see ForwardInput.headFrom). Valid until the next forward on this sequence. */
  forward(input: ForwardInput): Promise<Float32Array>;
  /**
   * The argmax token of every row [R]. Valid until the next forward on this sequence. With `top` (on a model whose
   * info has topIds), the forward also brings back each row's best ids, read by `topIds`.
   */
  forwardIds(input: ForwardInput, top?: boolean): Promise<Int32Array>;
  /**
   * Each row's best info.topIds ids, best first, row-major [R, topIds], of the last forwardIds that asked for them;
   * valid until the next forward on this sequence.
   */
  topIds?(): Int32Array;
  /** After this, rows base..base+rows.length-1 hold the former rows `rows` (ascending, each >= base); length = base + rows.length. */
  keep(base: number, rows: ArrayLike<number>): void;
  truncate(length: number): void;
  /**
   * Room for `rows` rows in all, now: a hint that saves growing the K/V (a copy of every row at each growth) as a
   * long prompt's chunks come in. Absent where the cache does not grow that way.
   */
  reserve?(rows: number): void;
  /**
   * A new sequence of the same model holding a copy of this one's first `rows` rows (which stays as it is), for a
   * prompt that starts with the same tokens. Its rows equal what prefilling those tokens would compute, bit for bit:
   * rows do not depend on how the forwards were cut. Absent where the cache cannot be copied cheaply (device K/V).
   * `room`: as `reserve` would make for the new sequence, so the copy lands where it stays.
   */
  fork?(rows: number, room?: number): Sequence;
  /**
   * The sequence will not be forwarded again, only forked or disposed (a prefix cache entry): frees what forwards
   * alone need (its logits buffers, megabytes on a large vocabulary). A forward after it throws.
   */
  settle?(): void;
  readonly transfers: TransferCounters;
  residency(): KvResidency;
  /** Releases the KV memory. */
  dispose(): void;
}

/** One sequence's share of a batched forward. */
export interface BatchItem {
  seq: Sequence;
  input: ForwardInput;
  /** What the step reads back: the argmax ids [R] (as `forwardIds`) or the logits [R, vocab] (as `forward`). */
  output: 'ids' | 'logits';
  /** With 'ids' on a model whose info has topIds: also each row's best ids (Sequence.topIds). */
  top?: boolean;
}

export interface LoadedModel {
  readonly info: ModelInfo;
  newSequence(): Sequence;
  /**
   * Several of this model's sequences in one forward. Result i is what items[i] alone would have returned, bit
   * for bit, so a job's output never depends on what it was batched with; it stays valid until that sequence's next
   * forward. Each sequence appears at most once.
   */
  forwardBatch(items: readonly BatchItem[]): Promise<(Float32Array | Int32Array)[]>;
  dispose(): Promise<void>;
}
