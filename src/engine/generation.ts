import type { ForwardInput, LoadedModel, Sequence } from '../model/types.js';
import type { DraftTree } from '../lookahead/types.js';
import type { GrammarFilter } from './grammar/filter.js';
import { clearTreeMask, createVerifyResult, DraftCounters, pickUnder, verifyDraft, writeTreeMask, writeTreePositions, type VerifyResult } from '../lookahead/index.js';
import type { EndReason, StepStats, WorkerJob } from './protocol.js';
import type { TokenLogprob } from './types.js';
import { Sampler, TokenPresence, topLogprobs } from './sampler.js';

/** Where drafts come from for one job: the lookahead scopes, merged (see drafting.ts). */
export interface DraftSource {
  /**
   * The kind of the coming step (an index below the sizer's contexts), from the same context `propose` will get;
   * a source without kinds makes every step kind 0.
   */
  classify?(context: Int32Array, length: number): number;
  /** A draft rooted at the last token of `context[0..length)`; at most `maxNodes` nodes incl. the root. */
  propose(context: Int32Array, length: number, maxNodes: number, maxDepth: number): DraftTree;
  /** Tokens the job committed (accepted + bonus), in order. */
  accepted(tokens: Int32Array): void;
}

/** Chooses how many tokens (root included) the next forward carries; lookahead's BudgetController is one. */
export interface DraftSizer {
  /** The size for this job's next step when `others` tokens of other jobs already ride in the same forward. */
  next(context: number, others: number): number;
  /** The job put `size` tokens into a forward of `total` tokens that took `forwardMs`, and `accepted` were kept. */
  observe(size: number, accepted: number, forwardMs: number, total: number): void;
}

export interface StepOutput {
  tokens: number[];
  logprobs?: TokenLogprob[];
}

const PREFILL_CHUNK = 512;

/**
 * One job's decode state on the worker: its KV sequence, its context, and the draft → forward → verify → keep
 * cycle. Buffers are sized once at start; a step allocates only the small arrays it hands to postMessage.
 */
export class Generation {
  private readonly counters = new DraftCounters();
  private readonly timing: Omit<StepStats, 'steps' | 'draftTokens' | 'acceptedTokens' | 'acceptedByPosition'> = {
    draftSeconds: 0,
    forwardSeconds: 0,
    prefillSeconds: 0,
    decodeSeconds: 0,
    budgets: {},
  };
  endReason: EndReason | null = null;

  private readonly seq: Sequence;
  private readonly context: Int32Array;
  private length: number;
  private generated = 0;
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
  private decodeStart = 0;
  /** Logprobs of the picks of the current step, in path order. */
  private stepLogprobs: TokenLogprob[] = [];

  constructor(
    private readonly model: LoadedModel,
    private readonly job: WorkerJob,
    private readonly drafts: DraftSource | null,
    private readonly budget: DraftSizer | null,
    /** The job's structured-output grammar: masks every pick, in plain steps and in the verification walk alike. */
    private readonly filter: GrammarFilter | null = null,
  ) {
    const info = model.info;
    this.vocab = info.vocabSize;
    this.eos = new Set(info.eosTokenIds);
    this.seq = model.newSequence();
    this.context = new Int32Array(info.contextLength + 1);
    this.context.set(job.promptIds);
    this.length = job.promptIds.length;
    this.maxDraft = drafts ? Math.max(1, job.lookahead.decodingLength) : 1;
    this.tokenBuf = new Int32Array(Math.max(this.maxDraft, PREFILL_CHUNK));
    this.posBuf = new Int32Array(this.tokenBuf.length);
    this.maskBuf = new Float32Array(this.maxDraft * (info.contextLength + this.maxDraft));
    this.keepRows = new Int32Array(this.maxDraft);
    this.verified = createVerifyResult(this.maxDraft);
    this.sampler = new Sampler(job.sampling, this.vocab);
    this.needsLogits = !this.sampler.plainArgmax || job.logprobs !== null || filter !== null;
    this.presence = new TokenPresence(this.vocab);
    for (const id of job.promptIds) this.presence.add(id);
    // A pick that depends on nothing but the row and records nothing that matters (no penalty context, no logprobs)
    // can be tried unmasked first (see TokenFilter.allows): a rejected try must leave no trace.
    if (filter && this.sampler.plainArgmax && job.logprobs === null) filter.enableFastPath();
  }

  /** The job's decode statistics so far. */
  get stats(): StepStats {
    const { steps, draftTokens, acceptedTokens, acceptedByPosition } = this.counters;
    const stats: StepStats = { ...this.timing, steps, draftTokens, acceptedTokens, acceptedByPosition };
    if (this.filter) {
      stats.maskSeconds = this.filter.maskSeconds;
      stats.masks = this.filter.masks;
    }
    return stats;
  }

  get finished(): boolean {
    return this.endReason !== null;
  }

  /** Runs the prompt through the model and commits the first token. */
  async prefill(): Promise<StepOutput> {
    const t0 = performance.now();
    const prompt = this.job.promptIds;
    for (let start = 0; start < prompt.length; start += PREFILL_CHUNK) {
      const n = Math.min(PREFILL_CHUNK, prompt.length - start);
      const tokens = this.tokenBuf.subarray(0, n);
      const positions = this.posBuf.subarray(0, n);
      for (let i = 0; i < n; i++) {
        tokens[i] = prompt[start + i];
        positions[i] = start + i;
      }
      await this.run({ tokens, positions, mask: null });
      if (start + n < prompt.length) continue;
      if (this.job.logprobs !== null) this.stepLogprobs = [];
      const first = this.pickCommitted(n - 1);
      this.timing.prefillSeconds = (performance.now() - t0) / 1000;
      this.decodeStart = performance.now();
      return this.commit(this.verifiedSingle(first));
    }
    throw new Error('empty prompt');
  }

  /** One draft → forward → verify → keep cycle. */
  async step(): Promise<StepOutput> {
    const past = this.seq.length;
    const room = this.model.info.contextLength - past;
    let draft: DraftTree | null = null;
    if (this.drafts && this.budget) {
      const t0 = performance.now();
      const remaining = this.job.maxTokens - this.generated;
      const size = Math.min(this.budget.next(this.drafts.classify?.(this.context, this.length) ?? 0, 0), room, remaining);
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
      // maskBuf is zero outside the last tree block, which is cleared after the forward.
      writeTreeMask(draft, past, mask, true);
    } else {
      tokens[0] = this.root;
      positions[0] = past;
    }
    const f0 = performance.now();
    let forwardMs: number;
    try {
      await this.run({ tokens, positions, mask });
      forwardMs = performance.now() - f0;
    } finally {
      if (mask) clearTreeMask(s, past, mask);
    }
    this.timing.forwardSeconds += forwardMs / 1000;
    if (this.job.logprobs !== null) this.stepLogprobs = [];
    let result: VerifyResult;
    if (draft && s > 1) {
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
    this.budget?.observe(s, result.acceptedCount, forwardMs, s);
    return this.commit(result);
  }

  /** Stops the job where it stands (client gone, stop string, shutdown). */
  abort(): void {
    if (!this.endReason) this.end('aborted');
  }

  dispose(): void {
    this.seq.dispose();
    this.filter?.dispose();
  }

  /** The generated tokens so far (a view into the context buffer). */
  get answer(): Int32Array {
    return this.context.subarray(this.job.promptIds.length, this.length);
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

  /** One forward, bringing back what the picks will read. */
  private async run(input: ForwardInput): Promise<void> {
    if (this.needsLogits) this.stepLogits = await this.seq.forward(input);
    else this.stepIds = await this.seq.forwardIds(input);
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
