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
}

export type DraftLayout = 'hier' | 'par' | 'one';

export interface LookaheadOptions {
  enabled: boolean;
  /** Max tokens per forward including the root. */
  decodingLength: number;
  /** Max draft depth. */
  branchLength: number;
  layout: DraftLayout;
}

export interface JobSpec {
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  /** Up to 4 stop strings, matched in the decoded text and cut from it. */
  stop: string[];
  /** null = no logprobs; otherwise how many top alternatives to report per token (0..20). */
  logprobs: number | null;
  lookahead: LookaheadOptions;
  /** Client-predicted output text (OpenAI `prediction`), tokenized: drafted from for this request only. */
  predictionIds?: number[];
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
  tokensPerStep: number;
  draftSeconds: number;
  forwardSeconds: number;
}

export interface JobResult {
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
  lookahead: LookaheadStats;
}

export interface Job extends AsyncIterable<JobChunk> {
  readonly id: string;
  /** Resolves when the job ends; rejects with AbortedError or the failure that ended it. */
  readonly result: Promise<JobResult>;
}
