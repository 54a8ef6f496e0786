import type { BatchItem, LoadedModel, Sequence } from '../model/types.js';
import type { DraftOrigin } from '../lookahead/index.js';
import type { DraftTree } from '../lookahead/types.js';
import type { GrammarFilter } from './grammar/filter.js';
import {
  clearTreeMask,
  createVerifyResult,
  DraftCounters,
  pickUnder,
  RECYCLED_K,
  firstPromptRowRecycled,
  topIds,
  verifyDraft,
  writeTreeMask,
  writeTreePositions,
  type VerifyResult,
} from '../lookahead/index.js';
import type { CachedPrefix } from './prefix-cache.js';
import type { EndReason, StepStats, WorkerJob } from './protocol.js';
import type { TokenLogprob } from './types.js';
import { Sampler, TokenPresence, topLogprobs } from './sampler.js';

/** Where drafts come from for one job: the lookahead scopes, merged (see drafting.ts). */
export interface DraftSource {
  /**
   * Selects the coming step's candidates from the same context `propose` will get, before the sizer sizes the step
   * (it reads their expected gains).
   */
  prepare?(context: Int32Array, length: number): void;
  /** A draft rooted at the last token of `context[0..length)`; at most `maxNodes` nodes incl. the root. */
  propose(context: Int32Array, length: number, maxNodes: number, maxDepth: number): DraftTree;
  /** Tokens the job committed (accepted + bonus), in order. */
  accepted(tokens: Int32Array): void;
  /** Draft tokens copied from the client's prediction so far, and how many of them were kept. */
  readonly predictionTokens?: { drafted: number; accepted: number };
  /**
   * A forward computed rows for `tokens[0..rows)`: `top[r·k .. r·k + k)` are the model's best ids after row r's token,
   * best first, and before[2r], before[2r + 1] the two tokens before it there (nearest first; -1 = none): lookahead's
   * recycled table learns them.
   */
  recycle?(tokens: Int32Array, before: Int32Array, top: Int32Array, rows: number, k: number): void;
  /** Accepted draft tokens each source proposed so far (LookaheadStats.acceptedBySource). */
  acceptedBySource?(): Record<DraftOrigin, number>;
}

/** Chooses how many tokens (root included) the next forward carries; lookahead's BudgetController is one. */
export interface DraftSizer {
  /** The coming step rides in a forward of `items` decode items; called before the draft source prepares it. */
  seat(items: number): void;
  /** The size for this job's next step when `others` tokens of other jobs already ride in the same forward. */
  next(others: number): number;
  /** The job put `size` tokens into a forward of `total` tokens that took `forwardMs`, and `accepted` were kept. */
  observe(size: number, accepted: number, forwardMs: number, total: number): void;
}

export interface StepOutput {
  tokens: number[];
  logprobs?: TokenLogprob[];
}

/** Answer tokens whose K/V a new sequence makes room for with its prompt's; a longer answer grows the region. */
const ANSWER_RESERVED = 256;

/**
 * The rows a job's sequence gets room for at once: its prompt, a first stretch of answer and a draft. A region grown
 * by doubling as the chunks came copied the K/V at every doubling and pooled what it outgrew (Qwen3-0.6B shape,
 * 4096-token prompt: 1.8 GB of regions for 0.9 GB of rows, 0.8 GB pooled, and decode steps ×2–3 slower after it).
 */
export function reservedRows(job: WorkerJob, drafting: boolean): number {
  return job.promptIds.length + Math.min(job.maxTokens, ANSWER_RESERVED) + maxDraftOf(job, drafting);
}

function maxDraftOf(job: WorkerJob, drafting: boolean): number {
  return drafting ? Math.max(1, job.lookahead.decodingLength) : 1;
}

/**
 * One job's decode state on the worker: its KV sequence, its context, and its half of every forward. The loop
 * (worker.ts) asks each running job to `plan` its share of the next batched forward — a prompt chunk while it
 * prefills, else the root and its draft — runs them all in one `forwardBatch`, and hands each job its result in
 * `complete`, which verifies, keeps the accepted K/V rows and commits. Buffers are sized once at start; a step
 * allocates only the small arrays it hands to postMessage.
 */
export class Generation {
  private readonly counters = new DraftCounters();
  private readonly timing: Omit<StepStats, 'steps' | 'draftTokens' | 'acceptedTokens' | 'predictionDraftTokens' | 'predictionAcceptedTokens' | 'acceptedByPosition'> = {
    draftSeconds: 0,
    forwardSeconds: 0,
    prefillSeconds: 0,
    decodeSeconds: 0,
    budgets: {},
    batchItems: {},
    prefillForwards: 0,
    cachedTokens: 0,
  };
  endReason: EndReason | null = null;

  private readonly seq: Sequence;
  /** The sequence went to the prefix cache (`detach`): dispose leaves it alone. */
  private detached = false;
  private readonly context: Int32Array;
  private length: number;
  private generated = 0;
  /** Prompt tokens already in the KV cache: the prompt is prefilled in chunks, one per forward. */
  private prefilled = 0;
  private prefillStart = 0;
  /** The last committed token: decided, not yet in the KV cache (the next draft's root). */
  private root = -1;
  private readonly tokenBuf: Int32Array;
  private readonly posBuf: Int32Array;
  private readonly maskBuf: Float32Array;
  private readonly keepRows: Int32Array;
  private readonly verified: VerifyResult;
  private readonly sampler: Sampler;
  /**
   * Whether steps must bring back logits: to sample, apply a penalty or bias, mask by a grammar or report logprobs. Otherwise the model's
   * in-graph argmax ids suffice and no S × vocab floats move or get scanned.
   */
  private readonly needsLogits: boolean;
  /** This job's share of a forward, rewritten by every `plan` (one object for the job's life). */
  private readonly item: BatchItem;
  /** What the planned forward carries, read back by `complete`: tokens, cache length before it, its draft. */
  private planned = 0;
  private plannedPast = 0;
  private plannedDraft: DraftTree | null = null;
  /** The current step's output: logits rows or argmax ids, read by the pickers below. */
  private stepLogits: Float32Array = new Float32Array(0);
  private stepIds: Int32Array = new Int32Array(0);
  /** Pickers bound once, not a closure per step. */
  private readonly pickFromLogits = (node: number): number => {
    const row = this.stepLogits.subarray(node * this.vocab, (node + 1) * this.vocab);
    return this.filter ? pickUnder(this.filter, row, this.pickRow) : this.pick(row);
  };
  private readonly pickRow = (row: Float32Array): number => this.pick(row);
  private readonly pickFromIds = (node: number): number => this.take(this.stepIds[node]);
  private readonly presence: TokenPresence;
  private readonly eos: Set<number>;
  private readonly vocab: number;
  private readonly maxDraft: number;
  /** Best ids per row the drafts learn from: from the graph (ids steps) or from the logits here; 0 = none. */
  private readonly topK: number;
  private topScratch: Int32Array = new Int32Array(0);
  private beforeScratch: Int32Array = new Int32Array(0);
  private decodeStart = 0;
  /** Logprobs of the picks of the current step, in path order. */
  private stepLogprobs: TokenLogprob[] = [];
  /** With WorkerJob.promptLogprobs: the prompt's tokens after the first, scored as the prefill's chunks come back. */
  readonly promptLogprobs: TokenLogprob[] | null;

  constructor(
    private readonly model: LoadedModel,
    private readonly job: WorkerJob,
    private readonly drafts: DraftSource | null,
    private readonly budget: DraftSizer | null,
    /** The job's structured-output grammar: masks every pick, in plain steps and in the verification walk alike. */
    private readonly filter: GrammarFilter | null = null,
    /** The most prompt tokens one `plan` may put into a forward. */
    maxChunk = job.promptIds.length,
    /** The rows of the prompt's start, from the prefix cache: only the rest is prefilled. */
    cached: CachedPrefix | null = null,
  ) {
    const info = model.info;
    this.vocab = info.vocabSize;
    this.eos = new Set(job.ignoreEos ? [] : info.eosTokenIds);
    this.seq = cached?.seq ?? model.newSequence();
    this.prefilled = this.timing.cachedTokens = cached?.rows ?? 0;
    this.context = new Int32Array(info.contextLength + 1);
    this.context.set(job.promptIds);
    this.length = job.promptIds.length;
    this.maxDraft = maxDraftOf(job, drafts !== null);
    this.tokenBuf = new Int32Array(this.maxDraft);
    this.posBuf = new Int32Array(Math.max(this.maxDraft, Math.min(maxChunk, job.promptIds.length)));
    this.maskBuf = new Float32Array(this.maxDraft * (info.contextLength + this.maxDraft));
    this.keepRows = new Int32Array(this.maxDraft);
    this.verified = createVerifyResult(this.maxDraft);
    // A prefix cache hit was forked into this room already.
    if (!cached) this.seq.reserve?.(reservedRows(job, drafts !== null));
    this.sampler = new Sampler(job.sampling, this.vocab);
    this.promptLogprobs = job.promptLogprobs ? [] : null;
    this.needsLogits = !this.sampler.plainArgmax || job.logprobs !== null || filter !== null || this.promptLogprobs !== null;
    this.topK = !drafts?.recycle ? 0 : this.needsLogits ? Math.min(RECYCLED_K, this.vocab) : (info.topIds ?? 0);
    this.item = {
      seq: this.seq,
      input: { tokens: this.tokenBuf, positions: this.posBuf, mask: null },
      output: this.needsLogits ? 'logits' : 'ids',
      top: !this.needsLogits && this.topK > 0,
    };
    this.presence = new TokenPresence(this.vocab);
    for (const id of job.promptIds) this.presence.add(id);
    // A pick that depends on nothing but the row and records nothing that matters (no penalty context, no logprobs)
    // can be tried unmasked first (see TokenFilter.allows): a rejected try must leave no trace.
    if (filter && this.sampler.plainArgmax && job.logprobs === null) filter.enableFastPath();
  }

  /** The job's decode statistics so far. */
  get stats(): StepStats {
    const { steps, draftTokens, acceptedTokens, acceptedByPosition } = this.counters;
    const prediction = this.drafts?.predictionTokens;
    const stats: StepStats = {
      ...this.timing,
      steps,
      draftTokens,
      acceptedTokens,
      predictionDraftTokens: prediction?.drafted ?? 0,
      predictionAcceptedTokens: prediction?.accepted ?? 0,
      acceptedByPosition,
    };
    const bySource = this.drafts?.acceptedBySource?.();
    if (bySource) stats.acceptedBySource = bySource;
    if (this.filter) {
      stats.maskSeconds = this.filter.maskSeconds;
      stats.masks = this.filter.masks;
    }
    return stats;
  }

  get finished(): boolean {
    return this.endReason !== null;
  }

  /** True until the whole prompt is in the KV cache (the first token comes with its last chunk). */
  get prefilling(): boolean {
    return this.prefilled < this.job.promptIds.length;
  }

  /** Prompt tokens not yet in the KV cache. */
  get promptLeft(): number {
    return this.job.promptIds.length - this.prefilled;
  }

  /**
   * This job's share of the next forward: the next chunk of its prompt, at most `limit` tokens, or its next decode
   * step — the root and a draft sized for a forward in which `others` tokens of other jobs already ride, at most
   * `limit` tokens in all. Valid until `complete` (or `cancel`).
   */
  plan(others: number, limit: number, items = 1): BatchItem {
    const input = this.item.input;
    if (this.prefilling) {
      if (this.prefillStart === 0) this.prefillStart = performance.now();
      const n = Math.min(limit, this.promptLeft, this.posBuf.length);
      const positions = this.posBuf.subarray(0, n);
      for (let i = 0; i < n; i++) positions[i] = this.prefilled + i;
      // The prompt is already in the context buffer: the chunk is a view of it, not a copy.
      input.tokens = this.context.subarray(this.prefilled, this.prefilled + n);
      input.positions = positions;
      input.mask = null;
      // The head runs on the rows whose outputs are read: the last (the first token), the prompt's rows the drafts
      // learn from (its tail where the head is dear), every row for prompt logprobs.
      const learnFrom = this.topK === 0 ? n : firstPromptRowRecycled(this.job.promptIds.length, this.model.info.headShare) - this.prefilled;
      input.headFrom = this.promptLogprobs ? 0 : Math.max(0, Math.min(n - 1, learnFrom));
      this.planned = n;
      this.plannedPast = this.prefilled;
      this.plannedDraft = null;
      return this.item;
    }
    const past = this.seq.length;
    let draft: DraftTree | null = null;
    if (this.drafts && this.budget) {
      const t0 = performance.now();
      const remaining = this.job.maxTokens - this.generated;
      const room = this.model.info.contextLength - past;
      this.budget.seat(items);
      this.drafts.prepare?.(this.context, this.length);
      const size = Math.min(this.budget.next(others), room, remaining, limit);
      if (size > 1) draft = this.drafts.propose(this.context, this.length, size, Math.min(this.job.lookahead.branchLength, remaining - 1));
      this.timing.draftSeconds += (performance.now() - t0) / 1000;
    }
    const s = draft ? draft.size : 1;
    const tokens = this.tokenBuf.subarray(0, s);
    const positions = this.posBuf.subarray(0, s);
    let mask: Float32Array | null = null;
    if (draft && s > 1) {
      tokens.set(draft.tokens.subarray(0, s));
      writeTreePositions(draft, past, positions);
      mask = this.maskBuf.subarray(0, s * (past + s));
      // maskBuf is zero outside the last tree block, which `complete` (or `cancel`) clears.
      writeTreeMask(draft, past, mask, true);
    } else {
      tokens[0] = this.root;
      positions[0] = past;
      draft = null;
    }
    input.tokens = tokens;
    input.positions = positions;
    input.mask = mask;
    input.headFrom = 0;
    this.planned = s;
    this.plannedPast = past;
    this.plannedDraft = draft;
    return this.item;
  }

  /** The planned forward did not run (the batch failed, or the job leaves): the mask buffer goes back to zero. */
  cancel(): void {
    if (this.item.input.mask) clearTreeMask(this.planned, this.plannedPast, this.item.input.mask);
    this.item.input.mask = null;
  }

  /** Drops whatever a failed forward of the planned item left in the cache, so the item can run again. */
  rewind(): void {
    if (this.seq.length > this.plannedPast) this.seq.truncate(this.plannedPast);
  }

  /**
   * Takes the planned forward's result — `output` of the job's item in a forward of `items` items and `total`
   * tokens that took `forwardMs` — and commits what it decided: the first token after the last prompt chunk, the
   * verified tokens after a decode step; null after an earlier prompt chunk, or when the job was aborted meanwhile.
   */
  complete(output: Float32Array | Int32Array, forwardMs: number, total: number, items: number): StepOutput | null {
    this.cancel();
    if (this.needsLogits) this.stepLogits = output as Float32Array;
    else this.stepIds = output as Int32Array;
    if (this.finished) return null;
    const s = this.planned;
    // The output holds the forward's last rows (ForwardInput.headFrom): row r is at r - first.
    const first = s - (this.needsLogits ? output.length / this.vocab : output.length);
    // Before any pick: a pick may mask or warp its logits row in place.
    if (this.topK > 0) this.recycle(first, s);
    if (this.job.logprobs !== null) this.stepLogprobs = [];
    if (this.prefilling) {
      if (this.promptLogprobs) this.scorePrompt(s);
      this.prefilled += s;
      this.timing.prefillForwards++;
      if (this.prefilling) return null;
      if (this.job.maxTokens === 0) {
        this.timing.prefillSeconds = (performance.now() - this.prefillStart) / 1000;
        this.end('length');
        return { tokens: [] };
      }
      const token = this.pickCommitted(s - 1 - first);
      this.timing.prefillSeconds = (performance.now() - this.prefillStart) / 1000;
      this.decodeStart = performance.now();
      return this.commit(this.verifiedSingle(token));
    }
    this.timing.forwardSeconds += forwardMs / 1000;
    this.timing.batchItems[items] = (this.timing.batchItems[items] ?? 0) + 1;
    const draft = this.plannedDraft;
    let result: VerifyResult;
    if (draft) {
      const past = this.plannedPast;
      result = verifyDraft(draft, this.picker, this.verified, this.filter);
      // Keep the root's row and those of the accepted nodes; the rest of the draft's rows are dropped.
      this.keepRows[0] = past;
      for (let i = 0; i < result.acceptedCount; i++) this.keepRows[i + 1] = past + result.acceptedNodes[i];
      this.seq.keep(past, this.keepRows.subarray(0, result.acceptedCount + 1));
    } else {
      result = this.verifiedSingle(this.pickCommitted(0));
    }
    this.counters.record(s - 1, result.acceptedCount);
    this.timing.budgets[s] = (this.timing.budgets[s] ?? 0) + 1;
    this.budget?.observe(s, result.acceptedCount, forwardMs, total);
    return this.commit(result);
  }

  /** Stops the job where it stands (client gone, stop string, shutdown). */
  abort(): void {
    if (!this.endReason) this.end('aborted');
  }

  /**
   * For the prefix cache, once the job ended by itself (not aborted: an abort can land mid-step, with rows no token
   * was committed for): its sequence and the tokens of its rows. The sequence is the caller's from then on.
   */
  detach(): { tokens: Int32Array; seq: Sequence } | null {
    if (!this.finished || this.endReason === 'aborted' || this.detached) return null;
    this.detached = true;
    // Row i holds context[i]: the prompt, then each committed token but the last (whose row no forward computed).
    const rows = Math.min(this.seq.length, this.length);
    if (rows < this.seq.length) this.seq.truncate(rows);
    return { tokens: this.context.slice(0, rows), seq: this.seq };
  }

  dispose(): void {
    if (!this.detached) this.seq.dispose();
    this.filter?.dispose();
  }

  /** The generated tokens so far (a view into the context buffer). */
  get answer(): Int32Array {
    return this.context.subarray(this.job.promptIds.length, this.length);
  }

  /** Hands the drafts the model's best ids after each of the forward's rows [first, s), the rows it has outputs for. */
  private recycle(first: number, s: number): void {
    const k = this.topK;
    const rows = s - first;
    let top: Int32Array | undefined;
    if (this.needsLogits) {
      if (this.topScratch.length < rows * k) this.topScratch = new Int32Array(rows * k * 2);
      top = this.topScratch;
      for (let r = 0; r < rows; r++) topIds(this.stepLogits, top, r * k, k, r * this.vocab, this.vocab);
    } else {
      top = this.seq.topIds?.();
      if (!top || top.length < rows * k) return;
    }
    if (this.beforeScratch.length < 2 * rows) this.beforeScratch = new Int32Array(4 * rows);
    const before = this.beforeScratch;
    const draft = this.plannedDraft;
    // Only a prompt chunk starts past its first row (decode steps read them all): no view per step.
    const tokens = first > 0 ? this.item.input.tokens.subarray(first) : this.item.input.tokens;
    const past = this.plannedPast + first;
    for (let r = 0; r < rows; r++) {
      if (draft && r > 0) {
        // A draft node: its tree ancestors, then the context before the root.
        const p = draft.parent[r];
        before[2 * r] = tokens[p];
        before[2 * r + 1] = p > 0 ? tokens[draft.parent[p]] : this.contextAt(this.plannedPast - 1);
      } else {
        // A prompt row, or the root: what precedes it in the context.
        before[2 * r] = this.contextAt(past + r - 1);
        before[2 * r + 1] = this.contextAt(past + r - 2);
      }
    }
    this.drafts!.recycle!(tokens, before, top, rows, k);
  }

  private contextAt(position: number): number {
    return position >= 0 ? this.context[position] : -1;
  }

  /** Row i of a prompt chunk holds the model's distribution for the prompt token after it. */
  private scorePrompt(rows: number): void {
    const ids = this.job.promptIds;
    for (let i = 0; i < rows && this.plannedPast + i + 1 < ids.length; i++) {
      const row = this.stepLogits.subarray(i * this.vocab, (i + 1) * this.vocab);
      this.promptLogprobs!.push(topLogprobs(row, ids[this.plannedPast + i + 1], this.job.logprobs ?? 0));
    }
  }

  private verifiedSingle(token: number): VerifyResult {
    this.verified.acceptedCount = 0;
    this.verified.targets[0] = token;
    this.verified.targetCount = 1;
    return this.verified;
  }

  /** Picks the token after a row of the current step, from whichever output `run` brought back. */
  private get picker(): (node: number) => number {
    return this.needsLogits ? this.pickFromLogits : this.pickFromIds;
  }

  /** A pick outside the verification walk (prefill, undrafted steps): committed at once, so the grammar advances. */
  private pickCommitted(node: number): number {
    const token = this.picker(node);
    this.filter?.accept(token);
    return token;
  }

  private pick(row: Float32Array): number {
    const token = this.take(this.sampler.pick(row, this.presence));
    if (this.job.logprobs !== null) this.stepLogprobs.push(topLogprobs(row, token, this.job.logprobs));
    return token;
  }

  private take(token: number): number {
    this.presence.addOutput(token);
    return token;
  }

  /** Appends the step's tokens, ending at EOS or max tokens. */
  private commit(result: VerifyResult): StepOutput {
    const out: number[] = [];
    for (let i = 0; i < result.targetCount; i++) {
      const token = result.targets[i];
      out.push(token);
      this.context[this.length++] = token;
      this.generated++;
      if (this.eos.has(token)) {
        this.end('eos');
        break;
      }
      if (this.generated >= this.job.maxTokens) {
        this.end('length');
        break;
      }
    }
    this.root = out[out.length - 1];
    if (this.drafts) this.drafts.accepted(this.context.subarray(this.length - out.length, this.length));
    const logprobs = this.job.logprobs !== null ? this.stepLogprobs.slice(0, out.length) : undefined;
    return { tokens: out, logprobs };
  }

  private end(reason: EndReason): void {
    this.endReason = reason;
    if (this.decodeStart) this.timing.decodeSeconds = (performance.now() - this.decodeStart) / 1000;
  }
}
