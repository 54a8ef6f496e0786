/**
 * One tiny config per supported family, each with the family's details switched on and small enough that a test
 * builds it in well under a second. Every detail is expressible in both GGUF metadata (as llama.cpp reads it)
 * and an HF config.json, so the same random weights can go through both loaders and through llama.cpp.
 */
import { syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { llama3Divisors, yarnRope, type YarnScaling } from '../../src/model/builder/rope.js';
import type { LlamaConfig } from '../../src/model/types.js';

export type FamilyName = 'llama3' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma3' | 'phi3' | 'smollm3';

export interface Family {
  name: FamilyName;
  /** general.architecture of its GGUF. */
  ggufArch: string;
  /** model_type of its config.json. */
  modelType: string;
  /** HF layout (rotate_half RoPE); the GGUF reader turns llama/smollm3 into interleaved. */
  config: LlamaConfig;
  /** YaRN settings behind config's divisors, written as rope_scaling / rope.scaling.* keys. */
  yarn?: YarnScaling;
}

/** Room for llama.cpp's SPM byte tokens (3 specials + 256 bytes) and a few pieces. */
const V = 320;
const LLAMA3_SCALING = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32 };
const PHI_SHORT = [1, 1.05, 1.1, 1.3, 1.6, 2];
const PHI_LONG = [1, 1.5, 2.5, 4, 8, 16];
/** Qwen's long-context recipe (factor 4 over the original context), on a context the test prompts cross. */
const QWEN_YARN: YarnScaling = { factor: 4, originalMaxPositions: 128 };
const QWEN_YARN_ROPE = yarnRope(1e6, 16, QWEN_YARN);

function base(overrides: Partial<LlamaConfig> & Pick<LlamaConfig, 'hiddenSize' | 'numLayers' | 'numHeads'>): LlamaConfig {
  return syntheticConfig({ vocabSize: V, maxPositions: 512, bosTokenId: 1, eosTokenIds: [2], intermediateSize: 96, ...overrides });
}

export const FAMILIES: Family[] = [
  {
    name: 'llama3',
    ggufArch: 'llama',
    modelType: 'llama',
    config: base({
      hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, ropeTheta: 500000, tiedEmbeddings: true,
      ropeFreqDivisors: llama3Divisors(500000, 16, LLAMA3_SCALING),
    }),
  },
  {
    name: 'mistral',
    ggufArch: 'llama',
    modelType: 'mistral',
    config: base({ hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 1, slidingWindow: 24 }),
  },
  {
    name: 'qwen2',
    ggufArch: 'qwen2',
    modelType: 'qwen2',
    // Qwen2.5 with YaRN: q/k/v biases, and the frequency ramp and attention temperature of rope_scaling yarn.
    config: base({
      hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, attentionBias: true, ropeTheta: 1e6, tiedEmbeddings: true,
      ropeFreqDivisors: QWEN_YARN_ROPE.divisors, ropeAttentionFactor: QWEN_YARN_ROPE.attentionFactor,
    }),
    yarn: QWEN_YARN,
  },
  {
    name: 'qwen3',
    ggufArch: 'qwen3',
    modelType: 'qwen3',
    // head_dim 32 with 4 heads over hidden 64: an explicit head size that hidden/heads would get wrong.
    config: base({ hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, qkNorm: true, ropeTheta: 1e6, tiedEmbeddings: true }),
  },
  {
    name: 'gemma3',
    ggufArch: 'gemma3',
    modelType: 'gemma3_text',
    // Layers 0..2 local (window 12, base 10000), layer 3 global (base 1e6, linear scaling 2), as period 4 says.
    config: base({
      hiddenSize: 64, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 24, qkNorm: true, sandwichNorms: true, hiddenAct: 'gelu_tanh',
      embeddingScale: 8, attentionScale: 1 / Math.sqrt(24), slidingWindow: 12, slidingLayers: [0, 1, 2], slidingRopeTheta: 10000,
      ropeTheta: 1e6, ropeFreqDivisors: new Array(12).fill(2), finalLogitSoftcap: 30, tiedEmbeddings: true, rmsNormEps: 1e-6,
    }),
  },
  {
    name: 'phi3',
    ggufArch: 'phi3',
    modelType: 'phi3',
    // Phi-4-mini's shape: partial rotary (12 of 16 dims), LongRoPE factors and attention factor, fused projections.
    config: base({
      hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, fusedProjections: true, ropeDim: 12, ropeFreqDivisors: PHI_SHORT,
      ropeLongFreqDivisors: PHI_LONG, ropeOriginalMaxPositions: 512, ropeAttentionFactor: Math.sqrt(1 + Math.log(8) / Math.log(512)),
      tiedEmbeddings: true,
    }),
  },
  {
    name: 'smollm3',
    ggufArch: 'smollm3',
    modelType: 'smollm3',
    config: base({ hiddenSize: 64, numLayers: 4, numHeads: 4, numKvHeads: 2, noRopeLayers: [3], ropeTheta: 2e6 }),
  },
];
