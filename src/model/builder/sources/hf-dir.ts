import { createHash } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../../../errors.js';
import type { WeightSource } from '../source.js';
import { checkTensorShapes, readHfConfig } from './hf-config.js';
import { normWeightOffset } from './hf-families.js';
import { openSafetensors, openSafetensorsIndex, type SafetensorsSet } from './safetensors.js';

function openWeights(dir: string): SafetensorsSet {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return openSafetensors(single);
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) return openSafetensorsIndex(index);
  throw new ModelLoadError(`${dir}: no model.safetensors or model.safetensors.index.json (only safetensors weights are read)`);
}

/** Changes whenever the config or any weight file could have changed, without reading the weights. */
function cacheKeyOf(dir: string, files: readonly string[]): string {
  const hash = createHash('sha256').update(realpathSync(dir));
  for (const file of [join(dir, 'config.json'), join(dir, 'generation_config.json'), ...files]) {
    if (!existsSync(file)) continue;
    const st = statSync(file);
    hash.update(`\0${file}\0${st.size}\0${st.mtimeMs}`);
  }
  return `hf:${hash.digest('hex')}`;
}

/**
 * A WeightSource over an HF model directory (config.json + safetensors, single or sharded).
 * Opening reads the config and the safetensors headers and checks every expected tensor's shape; tensors are read on demand.
 */
export function openHfDir(dir: string): WeightSource {
  if (!existsSync(join(dir, 'config.json'))) throw new ModelLoadError(`${dir}: no config.json`);
  const { config, modelType } = readHfConfig(dir);
  const weights = openWeights(dir);
  checkTensorShapes(config, (name) => weights.tensors.get(name)?.shape, dir);
  const normOffset = normWeightOffset(modelType);
  return {
    cacheKey: cacheKeyOf(dir, weights.files),
    config,
    has: (name) => weights.tensors.has(name),
    tensor(name: string): Float32Array {
      const t = weights.read(name);
      if (normOffset !== 0 && name.endsWith('norm.weight')) for (let i = 0; i < t.length; i++) t[i] += normOffset;
      return t;
    },
  };
}
