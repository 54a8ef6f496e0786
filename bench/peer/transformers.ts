import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BenchError } from '../errors.js';
import type { ChatMessage } from '../workload.js';

export interface PeerOutput {
  text: string;
  tokens: number;
  seconds: number;
}

/** The slice of transformers.js this harness uses; typed here so the peer stays an optional dev dependency. */
interface Tensor {
  dims: number[];
  slice(...ranges: (null | [number, number | null])[]): Tensor;
  tolist(): (number | bigint)[][];
}
interface Tokenizer {
  apply_chat_template(messages: ChatMessage[], opts: { tokenize: false; add_generation_prompt: true }): string;
  (text: string, opts: { add_special_tokens: boolean }): { input_ids: Tensor; attention_mask: Tensor };
  decode(ids: Tensor | number[], opts: { skip_special_tokens: boolean }): string;
}
interface CausalLM {
  generate(opts: Record<string, unknown>): Promise<Tensor>;
  dispose(): Promise<unknown>;
}

/**
 * Greedy generation with transformers.js (onnxruntime-node underneath) on a standard-layout ONNX export, one
 * prompt at a time, in this process. Loaded from local files only: nothing is downloaded.
 */
export async function runTransformersJs(modelDir: string, prompts: ChatMessage[][], maxTokens: number, onDone: () => void): Promise<PeerOutput[]> {
  if (!existsSync(join(modelDir, 'model.onnx'))) {
    throw new BenchError(
      `--peer-model ${modelDir} has no model.onnx; make one with: npm run cli -- build-model --from <hf-dir> --out ${modelDir} --layout standard`,
    );
  }
  let tjs: typeof import('@huggingface/transformers');
  try {
    tjs = await import('@huggingface/transformers');
  } catch (err) {
    throw new BenchError(`peer-transformers needs @huggingface/transformers (npm install -D @huggingface/transformers): ${(err as Error).message}`);
  }
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = dirname(modelDir);
  const name = basename(modelDir);
  const tokenizer = (await tjs.AutoTokenizer.from_pretrained(name)) as unknown as Tokenizer;
  const model = (await tjs.AutoModelForCausalLM.from_pretrained(name, { subfolder: '', dtype: 'fp32', device: 'cpu' })) as unknown as CausalLM;
  const eos = new Set<number>(eosIds(modelDir));
  const out: PeerOutput[] = [];
  try {
    for (const messages of prompts) {
      const text = tokenizer.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true });
      const inputs = tokenizer(text, { add_special_tokens: false });
      const t0 = performance.now();
      const ids = await model.generate({ ...inputs, max_new_tokens: maxTokens, do_sample: false });
      const seconds = (performance.now() - t0) / 1000;
      const generated = ids.tolist()[0].slice(inputs.input_ids.dims[1]).map(Number);
      const end = generated.findIndex((id) => eos.has(id));
      const kept = end < 0 ? generated : generated.slice(0, end);
      // The EOS token cost a forward like any other and our server counts it in usage, so it counts here too.
      out.push({ text: tokenizer.decode(kept, { skip_special_tokens: true }), tokens: kept.length + (end < 0 ? 0 : 1), seconds });
      onDone();
    }
  } finally {
    await model.dispose();
  }
  return out;
}

function eosIds(modelDir: string): number[] {
  for (const f of ['generation_config.json', 'config.json']) {
    const path = join(modelDir, f);
    if (!existsSync(path)) continue;
    const eos = (JSON.parse(readFileSync(path, 'utf8')) as { eos_token_id?: number | number[] }).eos_token_id;
    if (eos !== undefined) return Array.isArray(eos) ? eos : [eos];
  }
  return [];
}
