/**
 * Command-line tools over the same engine the server uses:
 *   generate     run prompts through the model, one JSON line per prompt
 *   build-model  write a tree-capable ONNX model from HF safetensors, a GGUF file or a synthetic config
 *   config-reference  print docs/configuration.md, generated from the config schema
 */
import { readFileSync } from 'node:fs';
import { AppError } from './errors.js';
import { buildModelCommand } from './cli/build-model.js';
import { configurationReference } from './config/reference.js';
import { generateCommand } from './cli/generate.js';

const USAGE = `usage:
  npm run cli -- generate --model <path|dir> (--prompt TEXT | --prompt-ids 1,2,3 | --chat TEXT | --input prompts.jsonl)
                 [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--context-length N]
                 [--lookahead off|hier|par|one] [--decoding-length N] [--branch-length N] [--corpus FILE] [--json]
  npm run cli -- build-model --from <hf-dir|file.gguf|synthetic:NAME> --out <dir> [--dtype fp32|fp16|q8|q4]
                 [--attention exact|matmul|onnx|mha|gqa] [--layout tree|standard]
  npm run cli -- config-reference > docs/configuration.md`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'generate') return generateCommand(rest);
  if (command === 'build-model') return buildModelCommand(rest);
  if (command === 'config-reference') {
    process.stdout.write(configurationReference());
    return 0;
  }
  if (command === '--version') {
    console.log(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
    return 0;
  }
  console.error(USAGE);
  return command === undefined || command === '--help' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof AppError || err instanceof TypeError ? err.message : String((err as Error)?.stack ?? err);
    console.error(`error: ${message}`);
    process.exit(1);
  },
);
