import type { WireError } from '../../errors.js';
import type { EmbeddingInput, EncoderInfo } from './encoder.js';

export interface EmbeddingWorkerData {
  dir: string;
  threads: number;
}

export type ToEmbeddingWorker = { type: 'embed'; id: number; inputs: EmbeddingInput[] };

export type FromEmbeddingWorker =
  | { type: 'ready'; info: EncoderInfo }
  | { type: 'load-failed'; error: WireError }
  /** `vectors`: dimensions floats per input, in input order (its buffer is transferred). */
  | { type: 'embedded'; id: number; vectors: Float32Array; tokens: number }
  | { type: 'failed'; id: number; error: WireError };
