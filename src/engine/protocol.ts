/**
 * Messages between the engine's HTTP-side thread and the worker that owns the ORT session and the KV caches.
 * Only plain data crosses: token ids, numbers, strings.
 */
import type { ModelInfo } from '../model/types.js';
import type { EngineOptions, LookaheadOptions, LookaheadStats, OutputConstraint, SamplingParams, TokenLogprob } from './types.js';

export interface WorkerJob {
  jobId: number;
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  logprobs: number | null;
  lookahead: LookaheadOptions;
  predictionIds: number[];
  /** Structured output the grammar forces, and the schema's own text (keys, enum values) tokenized as drafts. */
  constraint?: OutputConstraint | null;
  constraintHints?: number[][];
  sessionId: string | null;
  tenant: string;
}

export type StepStats = Omit<LookaheadStats, 'tokensPerStep'>;

export type EndReason = 'eos' | 'length' | 'aborted';

export type ToWorker =
  | { type: 'start'; job: WorkerJob }
  | { type: 'abort'; jobId: number }
  /** Each token's bytes (null = special), sent once before the first constrained job: the grammar's vocabulary. */
  | { type: 'grammar-vocab'; tokens: (Uint8Array | null)[] }
  | { type: 'documents'; requestId: number; tenant: string; docs: number[][] }
  | { type: 'drop-session'; requestId: number; tenant: string; sessionId: string }
  /** Exchanges learnt elsewhere (another replica): taught to the tenant's global trie, or to a session's trie. */
  | { type: 'exchanges'; requestId: number; tenant: string; sessionId: string | null; exchanges: Exchange[] }
  | { type: 'export-tries'; requestId: number }
  | { type: 'import-tries'; requestId: number; bytes: Uint8Array }
  | { type: 'close'; requestId: number };

/** A prompt and the answer given to it, as token ids. */
export interface Exchange {
  prompt: number[];
  answer: number[];
}

export interface TrieStats {
  global: number;
  sessions: number;
}

export type FromWorker =
  | { type: 'ready'; info: ModelInfo; costCurve: { k: number; ms: number }[] }
  | { type: 'load-failed'; name: string; message: string }
  | { type: 'log'; message: string }
  | { type: 'tokens'; jobId: number; tokens: number[]; logprobs?: TokenLogprob[] }
  | { type: 'done'; jobId: number; reason: EndReason; stats: StepStats; tries: TrieStats }
  | { type: 'failed'; jobId: number; name: string; message: string }
  | { type: 'reply'; requestId: number; value: unknown }
  /** A finished job taught its tenant's global trie (sent only when EngineOptions.shareAnswers is on). */
  | { type: 'learned'; tenant: string; sessionId: string | null; exchange: Exchange }
  /** After documents are added or a session dropped, so stats stay current between jobs. */
  | { type: 'tries'; tries: TrieStats };

export interface WorkerData {
  options: EngineOptions;
}
