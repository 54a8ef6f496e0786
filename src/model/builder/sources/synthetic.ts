import { createHash } from 'node:crypto';
import { ModelLoadError } from '../../../errors.js';
import type { LlamaConfig } from '../../types.js';
import type { WeightSource } from '../source.js';
import { hfTensorShapes } from './hf-config.js';

/**
 * Seeded random weights for any config of the supported families (every tensor hfTensorShapes lists): test
 * models and the embedded default need no files.
 * Each tensor is drawn from its own stream (seed + name), so tensors can be read in any order.
 * Linear weights ~ N(0, 1/in) keep activations O(1) through the layers, so logits are far from uniform.
 */
export class SyntheticSource implements WeightSource {
  readonly cacheKey: string;
  private readonly shapes = new Map<string, { dims: number[]; std: number; mean: number }>();

  constructor(readonly config: LlamaConfig, readonly seed = 1) {
    this.cacheKey = `synthetic:${createHash('sha256').update(JSON.stringify({ config, seed })).digest('hex').slice(0, 24)}`;
    for (const [name, dims] of hfTensorShapes(config)) {
      if (name === 'model.embed_tokens.weight') this.shapes.set(name, { dims, std: 0.5, mean: 0 });
      else if (dims.length === 2) this.shapes.set(name, { dims, std: 1 / Math.sqrt(dims[1]), mean: 0 });
      else if (name.endsWith('norm.weight')) this.shapes.set(name, { dims, std: 0.1, mean: 1 });
      else this.shapes.set(name, { dims, std: 0.1, mean: 0 });
    }
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }

  tensor(name: string): Float32Array {
    const s = this.shapes.get(name);
    if (!s) throw new ModelLoadError(`synthetic model has no tensor ${name}`);
    const n = s.dims.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const rand = mulberry32(createHash('sha256').update(`${this.seed}:${name}`).digest().readUInt32LE(0));
    for (let i = 0; i < n; i += 2) {
      // Box-Muller: two normals per pair of uniforms.
      const r = Math.sqrt(-2 * Math.log(1 - rand()));
      const t = 2 * Math.PI * rand();
      out[i] = s.mean + s.std * r * Math.cos(t);
      if (i + 1 < n) out[i + 1] = s.mean + s.std * r * Math.sin(t);
    }
    return out;
  }
}

/** A small deterministic generator: the same seed gives the same numbers on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Llama config with the usual defaults filled in, for tests and the embedded default model. */
export function syntheticConfig(overrides: Partial<LlamaConfig> & Pick<LlamaConfig, 'hiddenSize' | 'numLayers' | 'numHeads'>): LlamaConfig {
  return {
    vocabSize: 256,
    numKvHeads: overrides.numHeads,
    headDim: overrides.hiddenSize / overrides.numHeads,
    intermediateSize: Math.round((overrides.hiddenSize * 8) / 3),
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeStyle: 'half',
    tiedEmbeddings: false,
    attentionBias: false,
    maxPositions: 2048,
    bosTokenId: 1,
    eosTokenIds: [2],
    ...overrides,
  };
}
