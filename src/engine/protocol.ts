/**
 * Messages between the engine's HTTP-side thread and the worker that owns the ORT session and the KV caches.
 * Only plain data crosses: token ids, numbers, strings.
 */
import type { WireError } from '../errors.js';
import type { ModelInfo } from '../model/types.js';
import type { EngineOptions, LookaheadOptions, LookaheadStats, OutputConstraint, SamplingParams, TokenLogprob } from './types.js';

export interface WorkerJob {
  jobId: number;
  /**
   * Jobs of one request prompt (its n choices: same prompt, prediction, constraint and lookahead settings) share a
   * group, and one request trie; the id of the group's first job.
   */
  group: number;
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  logprobs: number | null;
  lookahead: LookaheadOptions;
  predictionIds: number[];
  ignoreEos?: boolean;
  promptLogprobs?: boolean;
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
  /** Part of a document (tokenized on the main thread, piece by piece); `end` closes the document. */
  | { type: 'document-piece'; tenant: string; ids: Int32Array; end: boolean }
  /** Answered once every piece posted before it is in the tries. */
  | { type: 'documents-done'; requestId: number }
  | { type: 'drop-session'; requestId: number; tenant: string; sessionId: string }
  /** Exchanges learnt elsewhere (another replica): taught to the tenant's global trie, or to a session's trie. */
  | { type: 'exchanges'; requestId: number; tenant: string; sessionId: string | null; exchanges: Exchange[] }
  | { type: 'export-tries'; requestId: number }
  | { type: 'import-tries'; requestId: number; bytes: Uint8Array }
  | { type: 'close'; requestId: number }
  /** Test-only (honoured only when WorkerData.testFaults): break the worker, or one job's forward, the way a bug would. */
  | { type: 'fault'; kind: WorkerFault; jobId?: number };

/** 'bad-forward': the job's next decode forward carries a token outside the vocabulary, so that forward throws. */
export type WorkerFault = 'crash' | 'wedge' | 'bad-forward';

/** A prompt and the answer given to it, as token ids. */
export interface Exchange {
  prompt: number[];
  answer: number[];
}

export interface TrieStats {
  global: number;
  sessions: number;
  /** Tenants with a global trie held, and sessions held (bounded by config). */
  tenants: number;
  sessionCount: number;
  /** Tenants evicted to stay within maxTenants since the worker started. */
  evictedTenants: number;
}

export type FromWorker =
  | { type: 'ready'; info: ModelInfo; costCurve: { k: number; ms: number }[] }
  | { type: 'load-failed'; name: string; message: string }
  | { type: 'log'; message: string }
  | { type: 'tokens'; jobId: number; tokens: number[]; logprobs?: TokenLogprob[] }
  | { type: 'done'; jobId: number; reason: EndReason; stats: StepStats; tries: TrieStats; promptLogprobs?: TokenLogprob[] }
  | { type: 'failed'; jobId: number; error: WireError }
  | { type: 'reply'; requestId: number; value: unknown; error?: WireError }
  /** A finished job taught its tenant's global trie (sent only when EngineOptions.shareAnswers is on). */
  | { type: 'learned'; tenant: string; sessionId: string | null; exchange: Exchange }
  /** After documents are added or a session dropped, so stats stay current between jobs. */
  | { type: 'tries'; tries: TrieStats };

export interface WorkerData {
  options: EngineOptions;
  /** Identifies the model's token ids in trie snapshots (see snapshot-file.ts). */
  fingerprint: string;
  /**
   * Float64 slots the main thread reads without a message: [HEARTBEAT_BUSY_SINCE] = Date.now() when the worker
   * began its current unit of work (a decode step, a slice of bulk work), 0 when idle (the watchdog reads it);
   * [HEARTBEAT_PIECES_DONE] = document pieces ingested so far (the main thread keeps only a few posted ahead).
   */
  heartbeat: SharedArrayBuffer;
  /** Honour `fault` messages: set by tests only, never from configuration. */
  testFaults?: boolean;
  /** Items per forward where ModelInfo.maxBatch is 1: set by tests only, to batch on a one-sequence model. */
  testMaxBatch?: number;
}

export const HEARTBEAT_BUSY_SINCE = 0;
export const HEARTBEAT_PIECES_DONE = 1;
export const HEARTBEAT_BYTES = 16;
