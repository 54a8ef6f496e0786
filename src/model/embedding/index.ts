import { Worker } from 'node:worker_threads';
import { basename, resolve } from 'node:path';
import { EngineRestartingError, fromWire, ModelLoadError, QueueFullError } from '../../errors.js';
import type { EmbeddingInput, EncoderInfo } from './encoder.js';
import type { EmbeddingWorkerData, FromEmbeddingWorker, ToEmbeddingWorker } from './protocol.js';

export type { EmbeddingInput, EncoderInfo } from './encoder.js';

/** A local sentence-embedding model, as the server sees it. */
export interface Embedder {
  readonly id: string;
  /** Unix seconds when it was loaded. */
  readonly created: number;
  readonly info: EncoderInfo;
  /** Unit vectors (info.dimensions floats per input, in input order) and the tokens the inputs took. */
  embed(inputs: EmbeddingInput[]): Promise<{ vectors: Float32Array; tokens: number }>;
  close(): Promise<void>;
}

export interface EmbedderOptions {
  /** Served under this id; absent = the directory's name. */
  id?: string | null;
  /** Intra-op threads of its ORT session. */
  threads: number;
}

/** Loads the model in its own worker thread; throws ModelLoadError when it cannot. */
export async function startEmbedder(dir: string, options: EmbedderOptions): Promise<Embedder> {
  const embedder = new WorkerEmbedder(resolve(dir), options.id || basename(resolve(dir)), options.threads);
  await embedder.start();
  return embedder;
}

/** Requests waiting on the worker at most: each holds its inputs in memory until its turn. */
const MAX_PENDING = 64;

type Pending = { resolve: (value: { vectors: Float32Array; tokens: number }) => void; reject: (err: Error) => void };

/**
 * The HTTP thread's half: posts inputs to the worker and matches answers to requests. A worker that dies fails
 * what it held and is started again on the next request.
 */
class WorkerEmbedder implements Embedder {
  info!: EncoderInfo;
  readonly created = Math.floor(Date.now() / 1000);
  private worker: Worker | null = null;
  private starting: Promise<void> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly dir: string,
    readonly id: string,
    private readonly threads: number,
  ) {}

  start(): Promise<void> {
    this.starting ??= this.spawn().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  async embed(inputs: EmbeddingInput[]): Promise<{ vectors: Float32Array; tokens: number }> {
    if (this.pending.size >= MAX_PENDING) throw new QueueFullError(`too many embedding requests: ${this.pending.size} waiting; retry shortly`, 1);
    if (!this.worker) await this.start();
    const worker = this.worker!;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ type: 'embed', id, inputs } satisfies ToEmbeddingWorker);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    this.failAll(new EngineRestartingError('the server is shutting down', 1));
    await worker?.terminate();
  }

  private spawn(): Promise<void> {
    const worker = new Worker(new URL('../../worker-entry.mjs', import.meta.url), {
      argv: [new URL('./worker', import.meta.url).href],
      workerData: { dir: this.dir, threads: this.threads } satisfies EmbeddingWorkerData,
    });
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (msg: FromEmbeddingWorker) => {
        if (msg.type === 'ready') {
          this.info = msg.info;
          this.worker = worker;
          resolve();
        } else if (msg.type === 'load-failed') {
          void worker.terminate();
          reject(new ModelLoadError(`embedding model ${this.dir}: ${msg.error.message}`));
        } else {
          const pending = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          if (msg.type === 'embedded') pending?.resolve({ vectors: msg.vectors, tokens: msg.tokens });
          else pending?.reject(fromWire(msg.error));
        }
      });
      const down = (why: string) => {
        reject(new ModelLoadError(`embedding model ${this.dir}: the worker ${why} while loading`));
        if (this.worker !== worker) return;
        this.worker = null;
        if (!this.closed) this.failAll(new EngineRestartingError(`The embedding worker ${why}; retry shortly.`, 1));
      };
      worker.on('error', (err) => down(`failed (${err.message})`));
      worker.on('exit', (code) => down(`exited (code ${code})`));
    });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
