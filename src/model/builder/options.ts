/** How a graph is built from weights. Part of the build-cache key. */
export type WeightDType = 'fp32' | 'fp16' | 'q8' | 'q4';
/**
 * 'exact' = composed from MatMul/Exp so every row is bit-exact whatever shares its forward (see exactAttention; the
 * CPU default); 'onnx' = ONNX Attention (opset 23); 'mha' = com.microsoft MultiHeadAttention;
 * 'gqa' = com.microsoft GroupQueryAttention.
 */
export type AttentionKind = 'exact' | 'onnx' | 'mha' | 'gqa';
/** 'tree' = this project's contract (additive bias, JS-owned KV); 'standard' = HF Optimum names for transformers.js. */
export type GraphLayout = 'tree' | 'standard';
/** Tree layout only. 'host' = the runtime's JS-owned cache (CPU EP); 'device' = present K/V fed back (GPU EPs). */
export type KvPlacement = 'host' | 'device';

export interface BuildOptions {
  dtype: WeightDType;
  attention: AttentionKind;
  layout: GraphLayout;
  /** Absent = 'host'. */
  kv?: KvPlacement;
  /** Force external data on or off; by default it is used when the weights exceed EXTERNAL_DATA_THRESHOLD bytes. */
  externalData?: boolean;
}

export const DEFAULT_BUILD_OPTIONS: BuildOptions = { dtype: 'fp32', attention: 'exact', layout: 'tree' };

/** Bumped whenever the emitted graph changes, so cached builds are rebuilt. */
export const BUILDER_VERSION = 7;

/** Protobuf caps a message at 2 GB; stay well below it. */
export const EXTERNAL_DATA_THRESHOLD = 1.5 * 1024 ** 3;
