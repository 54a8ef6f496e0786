import { AbortedError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer/types.js';
import { IncrementalDetokenizer } from '../model/tokenizer/detokenizer.js';
import { StopMatcher } from './stop-matcher.js';
import type { EndReason, StepStats } from './protocol.js';
import type { Job, JobChunk, JobResult, TokenLogprob } from './types.js';

/**
 * The HTTP-side half of a job: turns the worker's token batches into text chunks (whole UTF-8 characters, stop
 * strings cut) and hands them to one consumer as an async iterator.
 */
export class EngineJob implements Job {
  readonly result: Promise<JobResult>;
  private readonly chunks: JobChunk[] = [];
  private wake: (() => void) | null = null;
  private finished = false;
  private failure: Error | null = null;
  private completionTokens = 0;
  private readonly promptTokens: number;
  private stoppedByString = false;
  private readonly detok: IncrementalDetokenizer;
  private readonly stops: StopMatcher;
  private resolveResult!: (r: JobResult) => void;
  private rejectResult!: (e: Error) => void;

  constructor(
    readonly id: string,
    readonly numericId: number,
    tokenizer: TextTokenizer,
    stop: string[],
    promptIds: number[],
    /** Tells the worker to stop generating (stop string hit or consumer gone). */
    private readonly requestStop: () => void,
  ) {
    // The prompt as context keeps the first token's leading space where SentencePiece would strip it.
    this.detok = new IncrementalDetokenizer(tokenizer, { contextIds: promptIds });
    this.promptTokens = promptIds.length;
    this.stops = new StopMatcher(stop);
    this.result = new Promise<JobResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    // A consumer that only awaits the iterator must not crash the process with an unhandled rejection.
    this.result.catch(() => {});
  }

  get generatedTokens(): number {
    return this.completionTokens;
  }

  get done(): boolean {
    return this.finished;
  }

  onTokens(tokens: number[], logprobs: TokenLogprob[] | undefined): void {
    if (this.finished || this.stoppedByString) return;
    this.completionTokens += tokens.length;
    const { text, stopped } = this.stops.push(this.detok.push(tokens));
    this.push({ tokens, text, logprobs });
    if (stopped) {
      this.stoppedByString = true;
      this.requestStop();
    }
  }

  onDone(reason: EndReason, stats: StepStats, promptLogprobs?: TokenLogprob[]): void {
    if (this.finished) return;
    if (reason === 'aborted' && !this.stoppedByString) {
      this.fail(new AbortedError('the job was cancelled'));
      return;
    }
    if (!this.stoppedByString) {
      const tail = this.stops.push(this.detok.flush());
      const text = tail.stopped ? tail.text : tail.text + this.stops.flush();
      if (text) this.push({ tokens: [], text });
      this.stoppedByString = tail.stopped;
    }
    this.finished = true;
    // The first token comes from the prefill; steps count the decode forwards after it.
    const tokensPerStep = stats.steps > 0 ? (this.completionTokens - 1) / stats.steps : this.completionTokens;
    this.resolveResult({
      finishReason: this.stoppedByString || reason === 'eos' ? 'stop' : 'length',
      promptTokens: this.promptTokens,
      completionTokens: this.completionTokens,
      lookahead: { ...stats, tokensPerStep },
      ...(promptLogprobs && { promptLogprobs }),
    });
    this.kick();
  }

  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.rejectResult(error);
    this.kick();
  }

  private push(chunk: JobChunk): void {
    this.chunks.push(chunk);
    this.kick();
  }

  private kick(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JobChunk> {
    try {
      for (;;) {
        while (this.chunks.length > 0) yield this.chunks.shift()!;
        if (this.finished) {
          if (this.failure) throw this.failure;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      // The consumer left early (break, throw, client gone): the worker must not go on generating for nobody.
      if (!this.finished) this.requestStop();
    }
  }
}
