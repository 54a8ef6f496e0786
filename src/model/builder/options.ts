/** How a graph is built from weights. Part of the build-cache key. */
export type WeightDType = 'fp32' | 'fp16' | 'q8' | 'q4';
/**
 * 'exact' = composed from MatMul/Exp so every row is bit-exact whatever shares its forward (see exactAttention; the
 * CPU default); 'matmul' = MatMul + Softmax (the WebGPU default, see matmulAttention); 'onnx' = ONNX Attention
 * (opset 23); 'mha' = com.microsoft MultiHeadAttention (wrong on WebGPU from 32 query rows); 'gqa' =
 * com.microsoft GroupQueryAttention.
 */
export type AttentionKind = 'exact' | 'matmul' | 'onnx' | 'mha' | 'gqa';
/** 'tree' = this project's contract (additive bias, JS-owned KV); 'standard' = HF Optimum names for transformers.js. */
export type GraphLayout = 'tree' | 'standard';
/** Tree layout only. 'host' = the runtime's JS-owned cache (CPU EP); 'device' = present K/V fed back (GPU EPs). */
export type KvPlacement = 'host' | 'device';

/**
 * com.microsoft MatMulNBits settings for q8/q4 (the bench's variants); absent fields take `nbitsSettings`'s
 * defaults. accuracyLevel 4 = int8 activations (MLAS's fast path), 0/1 = fp32 activations.
 */
export interface NBitsOptions {
  blockSize?: 16 | 32 | 64 | 128 | 256;
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  /** Asymmetric blocks (a uint4/uint8 zero point each) instead of the implied midpoint. */
  zeroPoints?: boolean;
}

export type NBitsSettings = Required<NBitsOptions>;

/** q4 has zero points by default: a fifth less weight error, fewer teacher-forced flips against fp32 (see README). */
export function nbitsSettings(dtype: 'q8' | 'q4', o: NBitsOptions = {}): NBitsSettings {
  return { blockSize: o.blockSize ?? 32, accuracyLevel: o.accuracyLevel ?? 4, zeroPoints: o.zeroPoints ?? dtype === 'q4' };
}

export interface BuildOptions {
  dtype: WeightDType;
  /** q8/q4 only. Absent = the defaults of nbitsSettings. */
  nbits?: NBitsOptions;
  attention: AttentionKind;
  layout: GraphLayout;
  /** Absent = 'host'. */
  kv?: KvPlacement;
  /** Force external data on or off; by default it is used when the weights exceed EXTERNAL_DATA_THRESHOLD bytes. */
  externalData?: boolean;
}

export const DEFAULT_BUILD_OPTIONS: BuildOptions = { dtype: 'fp32', attention: 'exact', layout: 'tree' };

/** Bumped whenever the emitted graph changes, so cached builds are rebuilt. */
export const BUILDER_VERSION = 18;

/** Protobuf caps a message at 2 GB; stay well below it. */
export const EXTERNAL_DATA_THRESHOLD = 1.5 * 1024 ** 3;

/**
 * Batched graphs whose weights are at most this many bytes also get the lone graph (build.ts LONE_FILE). ORT binds
 * every input of a run, idle slots' included (1–2.5 µs each): on chat-llama-5m (~1 ms forwards) that made a lone
 * forward ×1.25, and on the 150M-cost model (10–25 ms) ×1.01–1.03, not worth a second copy of its weights.
 */
export const LONE_GRAPH_MAX_BYTES = 64 * 1024 ** 2;
