import type { LlamaConfig } from '../types.js';
import type { OnnxGraph } from './onnx/graph.js';

/** One set of rotary frequencies: the global layers' and, for Gemma 3, the sliding layers' own. */
export interface RopeParams {
  theta: number;
  /** Rotated dims per head (the first ones). */
  dim: number;
  /** Divisor of each frequency, dim/2 of them; null = plain RoPE. */
  divisors: readonly number[] | null;
  /** cos/sin multiplier. */
  attentionFactor: number;
}

/** How a layer rotates q/k: not at all (NoPE), with the global frequencies, or with the sliding layers' own. */
export type LayerRope = 'none' | 'global' | 'sliding';

export function layerRope(c: LlamaConfig, layer: number): LayerRope {
  if (c.noRopeLayers?.includes(layer)) return 'none';
  // A local layer keeps its own base even when the window covers the whole context (slidingWindow absent).
  const local = c.slidingRopeTheta !== undefined && (c.slidingLayers?.includes(layer) ?? true);
  return local ? 'sliding' : 'global';
}

/** Whether the layer attends through the sliding window; a window covering the whole context changes nothing. */
export function isSlidingLayer(c: LlamaConfig, layer: number): boolean {
  if (c.slidingWindow === undefined) return false;
  return c.slidingLayers === undefined || c.slidingLayers.includes(layer);
}

export function ropeParams(c: LlamaConfig, which: 'global' | 'sliding'): RopeParams {
  const dim = c.ropeDim ?? c.headDim;
  if (which === 'sliding') return { theta: c.slidingRopeTheta ?? c.ropeTheta, dim, divisors: null, attentionFactor: 1 };
  // LongRoPE: llama.cpp picks the factor set by the context it is given, and so do we (by the context built for).
  const long = c.ropeLongFreqDivisors !== undefined && c.ropeOriginalMaxPositions !== undefined && c.maxPositions > c.ropeOriginalMaxPositions;
  return { theta: c.ropeTheta, dim, divisors: (long ? c.ropeLongFreqDivisors : c.ropeFreqDivisors) ?? null, attentionFactor: c.ropeAttentionFactor ?? 1 };
}

/** cos/sin tables [positions, dim/2]: angle = position · theta^(-2j/dim) / divisor_j, both scaled by the attention factor. */
export function ropeTables(p: RopeParams, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = p.dim / 2;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let j = 0; j < half; j++) {
    const freq = Math.pow(p.theta, (-2 * j) / p.dim) / (p.divisors?.[j] ?? 1);
    for (let pos = 0; pos < positions; pos++) {
      cos[pos * half + j] = p.attentionFactor * Math.cos(pos * freq);
      sin[pos * half + j] = p.attentionFactor * Math.sin(pos * freq);
    }
  }
  return { cos, sin };
}

export interface RopeCaches {
  cos: string;
  sin: string;
  dim: number;
}

export function ropeCaches(g: OnnxGraph, c: LlamaConfig, which: 'global' | 'sliding'): RopeCaches {
  const p = ropeParams(c, which);
  const { cos, sin } = ropeTables(p, c.maxPositions);
  return {
    cos: g.initializer(`rope.${which}.cos`, 'float32', [c.maxPositions, p.dim / 2], cos),
    sin: g.initializer(`rope.${which}.sin`, 'float32', [c.maxPositions, p.dim / 2], sin),
    dim: p.dim,
  };
}

/**
 * HF's `llama3` rope_scaling as frequency divisors (what llama.cpp's converter writes as rope_freqs.weight):
 * long wavelengths are divided by `factor`, short ones kept, the band between interpolated smoothly.
 */
export function llama3Divisors(theta: number, dim: number, s: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }): number[] {
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  const out: number[] = [];
  for (let j = 0; j < dim / 2; j++) {
    const wavelen = (2 * Math.PI) / Math.pow(theta, (-2 * j) / dim);
    if (wavelen < highWavelen) out.push(1);
    else if (wavelen > lowWavelen) out.push(s.factor);
    else {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out.push(1 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return out;
}

/** YaRN's settings as HF's rope_scaling and GGUF's rope.scaling.* keys give them. */
export interface YarnScaling {
  factor: number;
  originalMaxPositions: number;
  /** Rotations per original context above which a frequency is kept as is (HF beta_fast, default 32). */
  betaFast?: number;
  /** Rotations below which it is fully interpolated (HF beta_slow, default 1). */
  betaSlow?: number;
  /** cos/sin multiplier; absent = 1 + 0.1·ln(factor), YaRN's attention temperature. */
  attentionFactor?: number;
}

/**
 * YaRN as frequency divisors and an attention factor: frequencies that turn more than betaFast times over the
 * original context keep their value, those turning fewer than betaSlow times are divided by `factor`, and a linear
 * ramp over the pair index blends the band between (the pair bounds floored/ceiled, as HF and llama.cpp both do).
 */
export function yarnRope(theta: number, dim: number, s: YarnScaling): { divisors: number[]; attentionFactor: number } {
  const corrDim = (rotations: number) => (dim * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  const low = Math.max(0, Math.floor(corrDim(s.betaFast ?? 32)));
  const high = Math.min(dim - 1, Math.ceil(corrDim(s.betaSlow ?? 1)));
  const divisors: number[] = [];
  for (let j = 0; j < dim / 2; j++) {
    // The share of the original (extrapolated) frequency: 1 below `low`, 0 above `high`.
    const kept = 1 - Math.min(1, Math.max(0, (j - low) / Math.max(0.001, high - low)));
    divisors.push(1 / ((1 - kept) / s.factor + kept));
  }
  const attentionFactor = s.attentionFactor ?? (s.factor > 1 ? 1 + 0.1 * Math.log(s.factor) : 1);
  return { divisors, attentionFactor };
}
