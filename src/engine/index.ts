import { Worker } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { AbortedError, ContextLengthError, ModelLoadError, NotFoundError, QueueFullError, UnavailableError } from '../errors.js';
import { ensureModelLocal } from '../model/download.js';
import { loadTokenizer } from '../model/load.js';
import { readCorpus } from './corpus.js';
import type { ModelInfo } from '../model/types.js';
import type { TextTokenizer } from '../model/tokenizer/types.js';
import { EngineJob } from './job.js';
import { constraintHints } from './grammar/hints.js';
import type { FromWorker, ToWorker, TrieStats, WorkerData } from './protocol.js';
import type { Engine, EngineOptions, EngineStats, Exchange, Job, JobSpec, ReplicaTries, ServedModel } from './types.js';

export type { Engine, EngineOptions, ReplicaTries } from './types.js';

type Log = (message: string) => void;

/**
 * Starts the worker that loads the model, waits until it is ready, and returns the engine the server talks to.
 * The tokenizer is loaded on this thread too: chat rendering, encoding and detokenizing never wait behind a forward.
 */
export async function createEngine(requested: EngineOptions, log: Log = (m) => console.error(m)): Promise<Engine & ReplicaTries> {
  // A hub id becomes the directory it was downloaded to, served under the id the user gave.
  const local = await ensureModelLocal(requested.model, requested.cacheDir, requested.hub ?? { endpoint: 'https://huggingface.co', token: null }, log);
  const options: EngineOptions =
    local === requested.model ? requested : { ...requested, model: local, modelId: requested.modelId ?? requested.model! };
  const tokenizer = await loadTokenizer(options.model);
  const worker = new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
    workerData: { options } satisfies WorkerData,
  });
  const ready = await new Promise<{ info: ModelInfo; costCurve: { k: number; ms: number }[] }>((resolve, reject) => {
    const onMessage = (msg: FromWorker) => {
      if (msg.type === 'log') log(msg.message);
      else if (msg.type === 'ready') {
        worker.off('message', onMessage);
        resolve(msg);
      } else if (msg.type === 'load-failed') {
        worker.off('message', onMessage);
        reject(new ModelLoadError(msg.message));
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  const engine = new WorkerEngine(worker, ready.info, tokenizer, options, log);
  if (options.corpus) {
    const texts = readCorpus(options.corpus);
    log(`global trie: fed ${engine.addDocuments('default', texts)} tokens from ${texts.length} documents in ${options.corpus}`);
  }
  return engine;
}

class WorkerEngine implements Engine, ReplicaTries {
  readonly models: readonly ServedModel[];
  private readonly jobs = new Map<number, EngineJob>();
  /** Jobs handed to the worker, in order; the worker runs at most maxRunning and queues the rest. */
  private inWorker = 0;
  private readonly pending: { job: EngineJob; start: () => void }[] = [];
  private nextId = 1;
  private readonly replies = new Map<number, (value: unknown) => void>();
  private closing = false;
  private grammarVocabSent = false;
  /** Trie sizes as of the last finished job (the worker reports them with each job's end). */
  private lastTrieStats: TrieStats = { global: 0, sessions: 0 };
  private readonly totals = { jobs: 0, steps: 0, draftTokens: 0, acceptedTokens: 0, generatedTokens: 0 };
  private readonly learnedListeners: ((tenant: string, sessionId: string | null, exchange: Exchange) => void)[] = [];

  constructor(
    private readonly worker: Worker,
    readonly info: ModelInfo,
    private readonly tok: TextTokenizer,
    private readonly options: EngineOptions,
    private readonly log: Log,
  ) {
    this.models = [{ id: info.id, contextLength: info.contextLength, created: Math.floor(Date.now() / 1000), executionProvider: info.executionProvider }];
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', (err) => {
      this.log(`engine worker crashed: ${err.message}`);
      for (const job of this.jobs.values()) job.fail(err);
      this.jobs.clear();
    });
  }

  tokenizer(modelId: string): TextTokenizer {
    this.requireModel(modelId);
    return this.tok;
  }

  submit(modelId: string, spec: JobSpec): Job {
    this.requireModel(modelId);
    if (this.closing) throw new UnavailableError('the server is shutting down', 1);
    const context = this.info.contextLength;
    if (spec.promptIds.length === 0) throw new ContextLengthError('the prompt is empty', 'messages');
    if (spec.promptIds.length + spec.maxTokens > context) {
      throw new ContextLengthError(
        `This model's maximum context length is ${context} tokens. However, you requested ` +
          `${spec.promptIds.length + spec.maxTokens} tokens (${spec.promptIds.length} in the prompt, ` +
          `${spec.maxTokens} for the completion). Please reduce the prompt or max_tokens.`,
      );
    }
    if (this.inWorker >= this.options.maxRunning && this.pending.length >= this.options.maxQueued) {
      throw new QueueFullError(
        `too many requests: ${this.pending.length} waiting and ${this.inWorker} running; retry shortly`,
        1,
      );
    }
    const hints = spec.constraint ? constraintHints(spec.constraint).map((text) => this.tok.encode(text, { addSpecialTokens: false })) : [];
    if (spec.constraint) this.sendGrammarVocab();
    const jobId = this.nextId++;
    const job = new EngineJob(randomUUID(), jobId, this.tok, spec.stop, spec.promptIds, () => this.stopJob(jobId));
    this.jobs.set(jobId, job);
    this.totals.jobs++;
    const start = () => {
      this.inWorker++;
      this.post({
        type: 'start',
        job: {
          jobId,
          promptIds: spec.promptIds,
          maxTokens: spec.maxTokens,
          sampling: spec.sampling,
          logprobs: spec.logprobs,
          lookahead: spec.lookahead,
          predictionIds: spec.predictionIds ?? [],
          constraint: spec.constraint ?? null,
          constraintHints: hints,
          sessionId: spec.sessionId ?? null,
          tenant: spec.tenant ?? 'default',
        },
      });
    };
    if (this.inWorker < this.options.maxRunning) start();
    else this.pending.push({ job, start });
    if (spec.signal) {
      if (spec.signal.aborted) this.abortJob(jobId);
      else spec.signal.addEventListener('abort', () => this.abortJob(jobId), { once: true });
    }
    return job;
  }

  addDocuments(tenant: string, texts: string[]): number {
    const docs = texts.map((t) => this.tok.encode(t, { addSpecialTokens: false }));
    this.post({ type: 'documents', requestId: 0, tenant, docs });
    return docs.reduce((n, d) => n + d.length, 0);
  }

  dropSession(tenant: string, sessionId: string): boolean {
    this.post({ type: 'drop-session', requestId: 0, tenant, sessionId });
    return true;
  }

  onLearned(listener: (tenant: string, sessionId: string | null, exchange: Exchange) => void): void {
    this.learnedListeners.push(listener);
  }

  async addExchanges(tenant: string, sessionId: string | null, exchanges: Exchange[]): Promise<void> {
    await this.ask({ type: 'exchanges', requestId: 0, tenant, sessionId, exchanges });
  }

  async exportGlobalTries(): Promise<{ bytes: Uint8Array; tenants: string[] }> {
    return (await this.ask({ type: 'export-tries', requestId: 0 })) as { bytes: Uint8Array; tenants: string[] };
  }

  async importGlobalTries(bytes: Uint8Array): Promise<string | null> {
    return (await this.ask({ type: 'import-tries', requestId: 0, bytes })) as string | null;
  }

  stats(): EngineStats {
    return {
      running: this.inWorker,
      queued: this.pending.length,
      trieNodes: this.lastTrieStats,
      totals: { ...this.totals },
    };
  }


  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    for (const { job } of this.pending.splice(0)) {
      job.fail(new AbortedError('the server is shutting down'));
      this.jobs.delete(job.numericId);
    }
    const deadline = Date.now() + graceMs;
    while (this.jobs.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const id of this.jobs.keys()) this.abortJob(id);
    await this.ask({ type: 'close', requestId: 0 });
    await this.worker.terminate();
  }

  async terminate(): Promise<void> {
    this.closing = true;
    this.pending.length = 0;
    for (const [id, job] of this.jobs) {
      this.post({ type: 'abort', jobId: id });
      job.fail(new AbortedError('the server is stopping now'));
    }
    // Terminating the worker inside an ORT forward aborts the whole process: wait (briefly) for the step to end.
    const deadline = Date.now() + 2000;
    while (this.inWorker > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await this.worker.terminate();
  }

  /** The grammar engine's vocabulary, built from the tokenizer on first need (most servers never constrain). */
  private sendGrammarVocab(): void {
    if (this.grammarVocabSent) return;
    const tokens: (Uint8Array | null)[] = [];
    for (let id = 0; id < this.info.vocabSize; id++) tokens.push(id < this.tok.vocabSize ? this.tok.tokenBytes(id) : null);
    this.post({ type: 'grammar-vocab', tokens });
    this.grammarVocabSent = true;
  }

  private requireModel(modelId: string): void {
    if (modelId !== this.info.id) {
      throw new NotFoundError(`The model '${modelId}' does not exist or you do not have access to it.`, 'model_not_found');
    }
  }

  private stopJob(jobId: number): void {
    this.post({ type: 'abort', jobId });
  }

  private abortJob(jobId: number): void {
    const job = this.jobs.get(jobId);
    if (!job || job.done) return;
    const waiting = this.pending.findIndex((p) => p.job === job);
    if (waiting >= 0) {
      this.pending.splice(waiting, 1);
      this.jobs.delete(jobId);
      job.fail(new AbortedError('the job was cancelled before it started'));
      return;
    }
    this.post({ type: 'abort', jobId });
  }

  private ask(msg: Extract<ToWorker, { requestId: number }>): Promise<unknown> {
    const requestId = this.nextId++;
    return new Promise((resolve) => {
      this.replies.set(requestId, resolve);
      this.post({ ...msg, requestId });
    });
  }

  private post(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case 'tokens':
        this.jobs.get(msg.jobId)?.onTokens(msg.tokens, msg.logprobs);
        break;
      case 'done':
      case 'failed': {
        const job = this.jobs.get(msg.jobId);
        this.jobs.delete(msg.jobId);
        this.inWorker--;
        this.pending.shift()?.start();
        if (!job) break;
        if (msg.type === 'failed') {
          const err = new Error(msg.message);
          err.name = msg.name;
          job.fail(err);
        } else {
          this.totals.steps += msg.stats.steps;
          this.totals.draftTokens += msg.stats.draftTokens;
          this.totals.acceptedTokens += msg.stats.acceptedTokens;
          this.lastTrieStats = msg.tries;
          job.onDone(msg.reason, msg.stats);
          this.totals.generatedTokens += job.generatedTokens;
        }
        break;
      }
      case 'reply':
        this.replies.get(msg.requestId)?.(msg.value);
        this.replies.delete(msg.requestId);
        break;
      case 'log':
        this.log(msg.message);
        break;
      case 'tries':
        this.lastTrieStats = msg.tries;
        break;
      case 'learned':
        for (const listener of this.learnedListeners) listener(msg.tenant, msg.sessionId, msg.exchange);
        break;
      default:
        break;
    }
  }
}
