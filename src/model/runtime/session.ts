import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';

export interface RuntimeOptions {
  /** ORT intra-op threads; the VM default behaves like 1 thread, so it is always set explicitly. */
  threads?: number;
  executionProvider?: ExecutionProvider;
  /** Caps the KV cache; never above what the model supports. */
  contextLength?: number;
  /** Model id reported in ModelInfo; defaults to the directory name. */
  id?: string;
  log?: (message: string) => void;
}

export const DEFAULT_THREADS = 2;

/** Opens an ORT session from a file path (ORT reads external data next to it), falling back to CPU with a log line. */
export async function createSession(path: string, options: RuntimeOptions): Promise<{ session: ort.InferenceSession; ep: ExecutionProvider }> {
  const log = options.log ?? console.error;
  const base: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads ?? DEFAULT_THREADS,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  };
  const ep = options.executionProvider ?? 'cpu';
  if (ep !== 'cpu') {
    try {
      return { session: await ort.InferenceSession.create(path, { ...base, executionProviders: [ep, 'cpu'] }), ep };
    } catch (err) {
      log(`execution provider ${ep} unavailable (${(err as Error).message.split('\n')[0]}); falling back to cpu`);
    }
  }
  return { session: await ort.InferenceSession.create(path, { ...base, executionProviders: ['cpu'] }), ep: 'cpu' };
}

/** Int64 input buffers reused across steps; views cover only the current step's length. */
export class Int64Buffer {
  private data = new BigInt64Array(64);

  view(values: ArrayLike<number>): BigInt64Array {
    if (values.length > this.data.length) this.data = new BigInt64Array(Math.max(values.length, this.data.length * 2));
    for (let i = 0; i < values.length; i++) this.data[i] = BigInt(values[i]);
    return this.data.subarray(0, values.length);
  }

  fill(value: number, length: number): BigInt64Array {
    if (length > this.data.length) this.data = new BigInt64Array(Math.max(length, this.data.length * 2));
    const v = this.data.subarray(0, length);
    v.fill(BigInt(value));
    return v;
  }
}
