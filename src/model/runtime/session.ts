import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../../errors.js';
import { OnnxGraph } from '../builder/onnx/graph.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';
/** What a user may ask for: an EP, or 'auto' (the first of AUTO_ORDER that loads). */
export type ExecutionProviderChoice = ExecutionProvider | 'auto';
export const AUTO_ORDER: readonly ExecutionProvider[] = ['cuda', 'webgpu', 'cpu'];

export interface RuntimeOptions {
  /** ORT intra-op threads; the VM default behaves like 1 thread, so it is always set explicitly. */
  threads?: number;
  /** Resolved beforehand (resolveExecutionProvider); a provider that fails to load is an error, never a silent CPU run. */
  executionProvider?: ExecutionProvider;
  /** Caps the KV cache; never above what the model supports. */
  contextLength?: number;
  /** Model id reported in ModelInfo; defaults to the directory name. */
  id?: string;
  log?: (message: string) => void;
}

export const DEFAULT_THREADS = 2;

/** Why a provider may be missing, said in the error so that the fix is obvious. */
const HINTS: Record<ExecutionProvider, string> = {
  cpu: '',
  cuda: 'the CUDA EP needs its libraries, which onnxruntime-node downloads at install time (install without ONNXRUNTIME_NODE_INSTALL=skip, or use the CUDA Docker target) plus a CUDA 12 driver',
  webgpu: 'the WebGPU EP needs a Vulkan adapter: a GPU driver, or Mesa lavapipe for a software one (.ci/run installs it on Debian)',
};

/** Opens an ORT session from a file path (ORT reads external data next to it) on exactly the provider asked for. */
export async function createSession(
  path: string,
  options: RuntimeOptions,
  extra: Partial<ort.InferenceSession.SessionOptions> = {},
): Promise<{ session: ort.InferenceSession; ep: ExecutionProvider }> {
  const ep = options.executionProvider ?? 'cpu';
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads ?? DEFAULT_THREADS,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: [ep],
    ...extra,
  };
  try {
    return { session: await ort.InferenceSession.create(path, sessionOptions), ep };
  } catch (err) {
    if (ep === 'cpu') throw err;
    throw unavailable(ep, err);
  }
}

function unavailable(ep: ExecutionProvider, err: unknown): ModelLoadError {
  return new ModelLoadError(`execution provider ${ep} is not available (${String((err as Error).message ?? err).split('\n')[0]}); ${HINTS[ep]}`);
}

/**
 * The provider to run on: an explicit one must load (else ModelLoadError), 'auto' takes the first of AUTO_ORDER
 * that does and logs which. Loading is tried on a one-node graph, so no model is built for a provider that fails.
 */
export async function resolveExecutionProvider(choice: ExecutionProviderChoice, log: (message: string) => void): Promise<ExecutionProvider> {
  if (choice === 'cpu') return 'cpu';
  if (choice !== 'auto') {
    const failure = await probe(choice);
    if (failure) throw unavailable(choice, failure);
    return choice;
  }
  for (const ep of AUTO_ORDER) {
    const failure = ep === 'cpu' ? null : await probe(ep);
    if (!failure) {
      log(`execution provider auto: using ${ep}`);
      return ep;
    }
    log(`execution provider auto: ${ep} unavailable (${failure.message.split('\n')[0]})`);
  }
  return 'cpu';
}

/** Null when a session on `ep` opens and runs; else why not. */
export async function probe(ep: ExecutionProvider): Promise<Error | null> {
  const dir = mkdtempSync(join(tmpdir(), 'ep-probe-'));
  try {
    const g = new OnnxGraph('probe');
    g.input('x', 'float32', [4]);
    g.node('Add', ['x', 'x'], ['y']);
    g.output('y', 'float32', [4]);
    const path = join(dir, 'probe.onnx');
    g.write(path, { irVersion: 10, opsets: { '': 23 }, producer: 'lookahead-proxy', producerVersion: 'probe' });
    const session = await ort.InferenceSession.create(path, { executionProviders: [ep] });
    try {
      await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [4]) });
    } finally {
      await session.release();
    }
    return null;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Int64 input buffers reused across steps; views cover only the current step's length. Entries are written through
 * an Int32Array over the same memory (low word, then the sign word: little-endian, as every platform Node runs on),
 * so filling thousands of indices per forward makes no BigInt per entry.
 */
export class Int64Buffer {
  private data = new BigInt64Array(64);
  private words = new Int32Array(this.data.buffer);

  view(values: ArrayLike<number>): BigInt64Array {
    const v = this.take(values.length);
    for (let i = 0; i < values.length; i++) this.set(i, values[i]);
    return v;
  }

  /** A view of `length` entries, for `set` to fill (it may move the buffer: take before setting). */
  take(length: number): BigInt64Array {
    if (length > this.data.length) {
      this.data = new BigInt64Array(Math.max(length, this.data.length * 2));
      this.words = new Int32Array(this.data.buffer);
    }
    return this.data.subarray(0, length);
  }

  /** Entry i = value (an int32). */
  set(i: number, value: number): void {
    this.words[2 * i] = value;
    this.words[2 * i + 1] = value < 0 ? -1 : 0;
  }

  fill(value: number, length: number): BigInt64Array {
    const v = this.take(length);
    v.fill(BigInt(value));
    return v;
  }
}
