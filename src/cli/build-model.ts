import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidRequestError } from '../errors.js';
import { buildModel } from '../model/builder/build.js';
import type { AttentionKind, BuildOptions, GraphLayout, WeightDType } from '../model/builder/options.js';
import { SYNTHETIC_MODEL, TOKENIZER_SOURCE_FILE, resolveModel, weightSource, type TokenizerSource } from '../model/load.js';

const HF_SIDE_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'];

/** `build-model`: writes a graph to a directory the server and other runtimes can load without rebuilding. */
export async function buildModelCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      from: { type: 'string' },
      out: { type: 'string' },
      dtype: { type: 'string', default: 'fp32' },
      attention: { type: 'string', default: 'exact' },
      layout: { type: 'string', default: 'tree' },
      'context-length': { type: 'string' },
    },
  });
  if (!values.from || !values.out) throw new InvalidRequestError('build-model needs --from <hf-dir|file.gguf|default> and --out <dir>');
  const options: BuildOptions = {
    dtype: oneOf(values.dtype, ['fp32', 'fp16', 'q8', 'q4'], '--dtype') as WeightDType,
    attention: oneOf(values.attention, ['exact', 'matmul', 'onnx', 'mha', 'gqa'], '--attention') as AttentionKind,
    layout: oneOf(values.layout, ['tree', 'standard'], '--layout') as GraphLayout,
  };
  const resolved = resolveModel(values.from === 'default' ? SYNTHETIC_MODEL : values.from);
  if (resolved.kind === 'built' || resolved.kind === 'foreign') {
    throw new InvalidRequestError(`${values.from} is already an ONNX model; build from HF safetensors, a GGUF file or "default"`);
  }
  const contextLength = values['context-length'] ? Number(values['context-length']) : undefined;
  await buildModel(weightSource(resolved, contextLength), options, values.out, (m) => console.error(m));
  if (resolved.kind === 'hf') {
    for (const f of HF_SIDE_FILES) if (existsSync(join(resolved.path!, f))) copyFileSync(join(resolved.path!, f), join(values.out, f));
  } else {
    const tokenizer: TokenizerSource = resolved.kind === 'gguf' ? { kind: 'gguf', path: resolved.path! } : { kind: 'byte' };
    writeFileSync(join(values.out, TOKENIZER_SOURCE_FILE), JSON.stringify(tokenizer));
  }
  console.error(`wrote ${values.out}`);
  return 0;
}

function oneOf(value: string, allowed: string[], flag: string): string {
  if (!allowed.includes(value)) throw new InvalidRequestError(`${flag} must be one of ${allowed.join(', ')} (got ${value})`);
  return value;
}
