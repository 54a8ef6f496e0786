/** llama.cpp through node-llama-cpp's prebuilt CPU binary, as the independent reference of the family tests. */
import type { Llama } from 'node-llama-cpp';

export interface LlamaCppRunner {
  /** Greedy decoding of `steps` tokens after `prompt` (token ids), with each step's full next-token distribution. */
  greedy(ggufPath: string, prompt: number[], steps: number, vocabSize: number): Promise<{ tokens: number[]; probs: Float64Array[] }>;
  dispose(): Promise<void>;
}

/** null where node-llama-cpp's prebuilt binary does not load (never built from source here). */
export async function loadLlamaCpp(): Promise<LlamaCppRunner | null> {
  let llama: Llama;
  try {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, logLevel: LlamaLogLevel.error });
  } catch (err) {
    console.warn(`node-llama-cpp unavailable: ${(err as Error).message}`);
    return null;
  }
  return {
    async greedy(ggufPath, prompt, steps, vocabSize) {
      const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
      // fp32 end to end: an F16 KV cache or flash attention's fp16 accumulation would blur the comparison.
      const context = await model.createContext({
        contextSize: 256, threads: 1, sequences: 1, flashAttention: false,
        experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
      });
      const tokens: number[] = [];
      const probs: Float64Array[] = [];
      try {
        for await (const out of context.getSequence().evaluateWithMetadata(prompt as never[], { probabilities: true }, { temperature: 0 })) {
          const p = new Float64Array(vocabSize);
          for (const [token, prob] of out.probabilities) p[token as number] = prob;
          tokens.push(out.token as number);
          probs.push(p);
          if (tokens.length >= steps) break;
        }
      } finally {
        await context.dispose();
        await model.dispose();
      }
      return { tokens, probs };
    },
    dispose: () => llama.dispose(),
  };
}
