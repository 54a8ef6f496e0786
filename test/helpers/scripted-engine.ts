/**
 * TEST DOUBLE: a scripted Engine for route-level tests of the HTTP layer. It does no inference: tokens are UTF-8
 * bytes, and every job "generates" the text its script returns, a few tokens per step. Real-engine behaviour is
 * covered by the e2e tests, which run the real server on the real engine.
 */
import type { Engine, EngineStats, Job, JobChunk, JobResult, JobSpec, ServedModel } from '../../src/engine/types.js';
import { AbortedError, ContextLengthError, NotFoundError, QueueFullError } from '../../src/errors.js';
import type { ChatMessage, ChatRenderOptions, TextTokenizer } from '../../src/model/tokenizer/types.js';

export const SCRIPTED_MODEL = 'scripted';

/**
 * Tokens are UTF-8 bytes. A thinking tokenizer's template opens a think block in the generation prompt, as
 * Qwen3-Thinking's does, unless `enable_thinking` is false (then it writes an empty one, as Qwen3's does).
 */
function byteTokenizer(thinks: boolean): TextTokenizer {
  return {
    vocabSize: 256,
    bosTokenId: null,
    eosTokenIds: [],
    chatTemplateAddsBos: false,
    chatTemplateTakesTools: false,
    chatTemplateThinks: thinks,
    encode: (text) => [...Buffer.from(text, 'utf8')],
    decode: (ids) => Buffer.from(Array.from(ids)).toString('utf8'),
    tokenBytes: (id) => Uint8Array.of(id),
    // Template variables show in the prompt so route tests can see that they arrived.
    renderChat: (messages: ChatMessage[], options?: ChatRenderOptions) =>
      messages.map((m) => `${m.role}: ${m.content}\n`).join('') +
      (options?.templateKwargs ? `${JSON.stringify(options.templateKwargs)}\n` : '') +
      'assistant: ' +
      (thinks ? (options?.templateKwargs?.enable_thinking === false ? '<think>\n\n</think>\n\n' : '<think>\n') : ''),
  };
}

export interface ScriptOptions {
  contextLength?: number;
  /** What a job generates (before max_tokens and stop strings cut it). */
  script?: (spec: JobSpec) => string;
  tokensPerStep?: number;
  stepDelayMs?: number;
  /** Jobs beyond this many at once get QueueFullError. */
  capacity?: number;
  /** Fail every job with this error after its first step. */
  failAfterFirstStep?: Error;
  /** The chat template thinks (see byteTokenizer). */
  thinks?: boolean;
}

export class ScriptedEngine implements Engine {
  readonly models: readonly ServedModel[];
  readonly submitted: JobSpec[] = [];
  readonly documents: { tenant: string; texts: string[] }[] = [];
  readonly aborted: JobSpec[] = [];
  running = 0;
  private readonly tok: TextTokenizer;

  constructor(private readonly opts: ScriptOptions = {}) {
    this.tok = byteTokenizer(opts.thinks ?? false);
    this.models = [{ id: SCRIPTED_MODEL, contextLength: opts.contextLength ?? 512, created: 1_700_000_000, executionProvider: 'cpu' }];
  }

  tokenizer(modelId: string): TextTokenizer {
    this.require(modelId);
    return this.tok;
  }

  submit(modelId: string, spec: JobSpec): Job {
    this.require(modelId);
    if (spec.promptIds.length + spec.maxTokens > this.models[0].contextLength) throw new ContextLengthError('too long');
    if (this.running >= (this.opts.capacity ?? Infinity)) throw new QueueFullError('queue full', 3);
    this.submitted.push(spec);
    this.running++;
    const chunks: JobChunk[] = [];
    const text = (this.opts.script ?? (() => 'hello world, this is scripted output. '.repeat(20)))(spec);
    const ids = [...Buffer.from(text, 'utf8')].slice(0, spec.maxTokens);
    const result = this.run(spec, ids, chunks);
    result.catch(() => {});
    const engine = this;
    return {
      id: `job-${this.submitted.length}`,
      result,
      async *[Symbol.asyncIterator]() {
        let next = 0;
        for (;;) {
          while (next < chunks.length) yield chunks[next++];
          const state = await Promise.race([result.then(() => 'done'), engine.tick()]);
          if (state === 'done' && next >= chunks.length) return;
        }
      },
    };
  }

  private ticks: (() => void)[] = [];
  private tick(): Promise<string> {
    return new Promise((resolve) => this.ticks.push(() => resolve('tick')));
  }
  private wake(): void {
    for (const t of this.ticks.splice(0)) t();
  }

  private async run(spec: JobSpec, ids: number[], chunks: JobChunk[]): Promise<JobResult> {
    const per = this.opts.tokensPerStep ?? 3;
    let out = '';
    let steps = 0;
    let finish: JobResult['finishReason'] = 'length';
    try {
      for (let i = 0; i < ids.length; i += per) {
        await new Promise((r) => setTimeout(r, this.opts.stepDelayMs ?? 0));
        if (spec.signal?.aborted) {
          this.aborted.push(spec);
          throw new AbortedError('the job was cancelled');
        }
        if (steps === 1 && this.opts.failAfterFirstStep) throw this.opts.failAfterFirstStep;
        steps++;
        const tokens = ids.slice(i, i + per);
        const before = out.length;
        out += Buffer.from(tokens).toString('utf8');
        const hit = spec.stop.map((s) => out.indexOf(s)).filter((k) => k >= 0).sort((a, b) => a - b)[0];
        const logprobs = spec.logprobs === null ? undefined : tokens.map((t) => ({ token: t, logprob: -0.5, top: Array.from({ length: spec.logprobs! }, (_, k) => ({ token: t + k, logprob: -0.5 - k })) }));
        if (hit !== undefined) {
          chunks.push({ tokens, text: out.slice(before, Math.max(before, hit)), logprobs });
          finish = 'stop';
          break;
        }
        chunks.push({ tokens, text: out.slice(before), logprobs });
        this.wake();
      }
      if (ids.length < spec.maxTokens) finish = 'stop';
      const completionTokens = chunks.reduce((n, c) => n + c.tokens.length, 0);
      // Every draft is taken to come from the prediction when there is one.
      const predicted = spec.predictionIds !== undefined && spec.predictionIds.length > 0;
      return {
        finishReason: finish,
        promptTokens: spec.promptIds.length,
        completionTokens,
        lookahead: { steps, draftTokens: steps * 4, acceptedTokens: completionTokens - steps, predictionDraftTokens: predicted ? steps * 4 : 0, predictionAcceptedTokens: predicted ? completionTokens - steps : 0, tokensPerStep: completionTokens / Math.max(1, steps), draftSeconds: 0.001, forwardSeconds: 0.01, prefillSeconds: 0.001, decodeSeconds: 0.01, acceptedByPosition: [], budgets: {}, batchItems: {}, prefillForwards: 1, cachedTokens: 0 },
      };
    } finally {
      this.running--;
      queueMicrotask(() => this.wake());
    }
  }

  async addDocuments(tenant: string, texts: string[]): Promise<number> {
    this.documents.push({ tenant, texts });
    return texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
  }

  async dropSession(): Promise<boolean> {
    return true;
  }

  stats(): EngineStats {
    return readyStats(this.running, this.submitted.length);
  }

  async close(): Promise<void> {}

  async terminate(): Promise<void> {}

  private require(modelId: string): void {
    if (modelId !== SCRIPTED_MODEL) throw new NotFoundError(`no model ${modelId}`, 'model_not_found');
  }
}

/** The stats of a fake engine that is ready, with `running` jobs of `jobs` submitted and nothing else. */
export function readyStats(running = 0, jobs = 0): EngineStats {
  return {
    state: 'ready',
    restarts: 0,
    running,
    queued: 0,
    kv: { reservedBytes: 0, budgetBytes: 2 ** 31 },
    trieNodes: { global: 0, sessions: 0 },
    tenants: 0,
    sessions: 0,
    evictedTenants: 0,
    totals: { jobs, steps: 0, draftTokens: 0, acceptedTokens: 0, generatedTokens: 0 },
  };
}
