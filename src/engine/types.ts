import type { LoadOptions } from '../model/load.js';
import type { Exchange } from './protocol.js';
import type { DraftBudget, DraftOrigin } from '../lookahead/index.js';

export type { Exchange };

/**
 * What the server sees of the engine: submit a job, read its token batches, get its result.
 */
export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  repetitionPenalty: number;
  /** null = nondeterministic. */
  seed: number | null;
  /** OpenAI's: subtracted once from the logit of every token the output already holds (absent = 0). */
  presencePenalty?: number;
  /** OpenAI's: subtracted from a token's logit once per time the output already holds it (absent = 0). */
  frequencyPenalty?: number;
  /** OpenAI's `logit_bias`: token id → value added to its logit (-100..100). */
  logitBias?: Record<number, number>;
}

export type { DraftLayout } from '../lookahead/index.js';

/**
 * A job's lookahead settings: the server's defaults (config) with a request's overrides, one shape from the
 * schemas down; each step narrows its limits (decodingLength: tokens per forward, root included; branchLength: draft
 * depth) to a DraftBudget.
 */
export interface LookaheadOptions extends DraftBudget {
  enabled: boolean;
}

/**
 * What the output must be, enforced by constrained decoding (a grammar token mask in sampling and verification):
 * any JSON object, or JSON matching a schema. Check client-given ones with validateConstraint before submitting.
 */
export type OutputConstraint =
  | { type: 'json_object' }
  | { type: 'json_schema'; schema: Record<string, unknown>; name?: string; strict?: boolean };

export interface JobSpec {
  promptIds: number[];
  /** 0 = prefill only (scoring a prompt: `echo` with `max_tokens: 0`). */
  maxTokens: number;
  /**
   * max_tokens was not asked for (it is the context's room): the engine lowers it to what the K/V budget lets one
   * job hold, instead of refusing a plain request on a long-context model.
   */
  fitMaxTokens?: boolean;
  sampling: SamplingParams;
  /** Up to 4 stop strings, matched in the decoded text and cut from it. */
  stop: string[];
  /** null = no logprobs; otherwise how many top alternatives to report per token (0..20). */
  logprobs: number | null;
  lookahead: LookaheadOptions;
  /**
   * Score the prompt too (completions' `echo` with `logprobs`): each prompt token after the first gets its logprob
   * (and `logprobs` top alternatives) from the prefill's logits rows, in JobResult.promptLogprobs. Such a job does
   * not start from the prefix cache, whose rows no forward of its own computed.
   */
  promptLogprobs?: boolean;
  /** vLLM's `ignore_eos`: EOS is a token like any other and the job runs to maxTokens (benchmarks want fixed lengths). */
  ignoreEos?: boolean;
  /** Client-predicted output text (OpenAI `prediction`), tokenized: drafted from for this request only. */
  predictionIds?: number[];
  /** Output the grammar engine forces; absent = free text. */
  constraint?: OutputConstraint;
  /**
   * An earlier job of the same request prompt (another of its n choices): the two share one request trie. The specs
   * must agree on prompt, prediction, constraint and lookahead settings.
   */
  sharesDraftsWith?: Job;
  /** Conversation scope for the session trie. */
  sessionId?: string;
  tenant?: string;
  signal?: AbortSignal;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

/** One step's worth of output: text is already cut at a stop string and never ends in half a UTF-8 character. */
export interface JobChunk {
  tokens: number[];
  text: string;
  logprobs?: TokenLogprob[];
}

export interface LookaheadStats {
  steps: number;
  draftTokens: number;
  acceptedTokens: number;
  /** The part of draftTokens / acceptedTokens copied from the client's `prediction` (0 without one). */
  predictionDraftTokens: number;
  predictionAcceptedTokens: number;
  tokensPerStep: number;
  draftSeconds: number;
  /** Time inside session.run for decode steps (prefill excluded). */
  forwardSeconds: number;
  prefillSeconds: number;
  /** Wall time from the first decode step to the end. */
  decodeSeconds: number;
  /** Accepted draft tokens by depth (index 0 = first draft token). */
  acceptedByPosition: number[];
  /**
   * Accepted draft tokens each source proposed — the request's, session's and tenant's scopes, and the model's own
   * rankings (recycled) — a token several proposed counting for each. Absent when the job did not draft.
   */
  acceptedBySource?: Record<DraftOrigin, number>;
  /** How often the adaptive budget chose each draft size (tokens per forward incl. the root). */
  budgets: Record<number, number>;
  /**
   * How many items (jobs' steps and prompt chunks) shared the forwards of this job's decode steps: items → steps.
   * All 1 on a model that forwards one sequence at a time (ModelInfo.maxBatch 1).
   */
  batchItems: Record<number, number>;
  /** Forwards the prompt took (it is prefilled in chunks interleaved with other jobs' steps). */
  prefillForwards: number;
  /** Prompt tokens whose K/V came from the prefix cache (a copy of an earlier job's rows), not prefilled. */
  cachedTokens: number;
  /** Time the grammar cost (masks, and checks of greedy picks), and how many full masks it computed (structured outputs only). */
  maskSeconds?: number;
  masks?: number;
}

export interface JobResult {
  finishReason: 'stop' | 'length';
  /** With JobSpec.promptLogprobs: one entry per prompt token after the first. */
  promptLogprobs?: TokenLogprob[];
  promptTokens: number;
  completionTokens: number;
  lookahead: LookaheadStats;
}

export interface Job extends AsyncIterable<JobChunk> {
  readonly id: string;
  /** Resolves when the job ends; rejects with AbortedError or the failure that ended it. */
  readonly result: Promise<JobResult>;
}

export interface ServedModel {
  id: string;
  contextLength: number;
  /** Unix seconds when it was loaded. */
  created: number;
  /** The ORT execution provider it really runs on (after 'auto' resolved). */
  executionProvider: string;
}

/** Everything the engine needs to start (the model part is model/'s LoadOptions); main.ts maps Config onto it. */
export interface EngineOptions extends LoadOptions {
  lookahead: LookaheadOptions;
  /** Jobs waiting beyond the running ones; a full queue makes submit throw QueueFullError. */
  maxQueued: number;
  /** Jobs decoded concurrently (their steps share one batched forward, up to the model's maxBatch). */
  maxRunning: number;
  /** Tokens one forward carries at most, over all its items (drafts, single tokens, prompt chunks). */
  maxBatchTokens: number;
  /**
   * K/V memory the running jobs may reserve in all: a job reserves (prompt + max tokens + decodingLength) ×
   * ModelInfo.kvBytesPerToken from its start to its end; past the budget, jobs wait in the queue.
   */
  kvBudgetBytes: number;
  /**
   * K/V of finished jobs kept for prompts that start the same way (system prompts, earlier turns of a chat), beyond
   * kvBudgetBytes; 0 = off. See PrefixCache.
   */
  prefixCacheBytes: number;
  /** Session tries held in all, and per tenant (a tenant's new sessions evict its own oldest). */
  sessions: { max: number; ttlSeconds: number; maxPerTenant: number };
  /** maxTenants: global tries held; past it the least recently used tenant's trie is dropped. */
  globalTrie: { maxNodes: number; snapshotPath: string | null; maxTenants: number };
  /** A decode step (or slice of bulk work) running longer than this means the worker is wedged: it is replaced. */
  watchdogMs: number;
  /** Documents (JSONL with a "text" field, or a directory of .txt/.md) fed to the global trie at start. */
  corpus: string | null;
  /** Where a model named by Hugging Face id (`org/name`) is downloaded from; absent = https://huggingface.co. */
  hub?: { endpoint: string; token: string | null };
  /** Report every answer taught to a global trie to ReplicaTries.onLearned listeners (replication on). */
  shareAnswers?: boolean;
}

/**
 * What replication across server processes (src/sync) needs from an engine: the exchanges it learns, a way to
 * teach it exchanges learnt elsewhere, and its global tries whole, for snapshots.
 */
export interface ReplicaTries {
  /** Called for every finished answer taught to a tenant's global trie (only with EngineOptions.shareAnswers). */
  onLearned(listener: (tenant: string, sessionId: string | null, exchange: Exchange) => void): void;
  /**
   * Called when a new worker replaced a failed one, before any job runs on it: its tries hold only what the local
   * snapshot file had, not what was taught since.
   */
  onRestarted(listener: () => void): void;
  /** Teaches exchanges to the tenant's global trie, or to the session's trie; resolves once they are in. */
  addExchanges(tenant: string, sessionId: string | null, exchanges: Exchange[]): Promise<void>;
  /** Every tenant's global trie as one blob, and the tenants it holds (importing it replaces exactly those). */
  exportGlobalTries(): Promise<{ bytes: Uint8Array; tenants: string[] }>;
  /** Replaces the tenants in `bytes`; resolves null, or why the bytes were refused. */
  importGlobalTries(bytes: Uint8Array): Promise<string | null>;
}

/** starting → ready; ready → restarting (worker died or wedged) → ready; any → closed. */
export type EngineState = 'starting' | 'ready' | 'restarting' | 'closed';

export interface EngineStats {
  state: EngineState;
  /** Worker restarts since start. */
  restarts: number;
  running: number;
  queued: number;
  /** K/V bytes the running jobs reserved, and the configured budget (EngineOptions.kvBudgetBytes). */
  kv: { reservedBytes: number; budgetBytes: number };
  trieNodes: { global: number; sessions: number };
  /** Tenants with a global trie held, session tries held, tenants evicted to stay within the bound. */
  tenants: number;
  sessions: number;
  evictedTenants: number;
  totals: { jobs: number; steps: number; draftTokens: number; acceptedTokens: number; generatedTokens: number };
}

export interface Engine {
  readonly models: readonly ServedModel[];
  tokenizer(modelId: string): import('../model/tokenizer/types.js').TextTokenizer;
  /** Throws ContextLengthError, QueueFullError or NotFoundError before any work is queued. */
  submit(modelId: string, spec: JobSpec): Job;
  /**
   * Feed RAG documents to a tenant's global trie (the one entry point for documents). Resolves with the number of
   * tokens inserted once they are all in; the work is sliced so running streams keep their pace.
   */
  addDocuments(tenant: string, texts: string[]): Promise<number>;
  /** Forget a session's trie; resolves false when there was none. */
  dropSession(tenant: string, sessionId: string): Promise<boolean>;
  stats(): EngineStats;
  /** Stops accepting jobs, lets running ones finish (or aborts them after graceMs), snapshots tries. */
  close(graceMs?: number): Promise<void>;
  /** Stops now: fails every job and ends the worker without a snapshot (a second SIGTERM). */
  terminate(): Promise<void>;
}
