import { Worker } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import {
  AbortedError,
  ContextLengthError,
  EngineRestartingError,
  InvalidRequestError,
  fromWire,
  KvBudgetError,
  ModelLoadError,
  NotFoundError,
  QueueFullError,
  UnavailableError,
} from '../errors.js';
import { ensureModelLocal } from '../model/download.js';
import { loadTokenizer } from '../model/load.js';
import { readCorpus } from './corpus.js';
import type { ModelInfo } from '../model/types.js';
import type { TextTokenizer } from '../model/tokenizer/types.js';
import { encodeAtMost, PIECE_CHARS } from './encode-bounded.js';
import { splitText } from './split-text.js';
import { EngineJob } from './job.js';
import { constraintHints } from './grammar/hints.js';
import { HEARTBEAT_BUSY_SINCE, HEARTBEAT_BYTES, HEARTBEAT_PIECES_DONE, type FromWorker, type ToWorker, type TrieStats, type WorkerData, type WorkerFault } from './protocol.js';
import { modelFingerprint } from './snapshot-file.js';
import type { Engine, EngineOptions, EngineState, EngineStats, Exchange, Job, JobSpec, ReplicaTries, ServedModel } from './types.js';

export type { Engine, EngineOptions, ReplicaTries } from './types.js';

type Log = (message: string) => void;

/** What tests may add to EngineOptions; nothing here is reachable from configuration. */
export interface TestHooks {
  /** Lets `injectFault` break the worker (crash, wedge). */
  faults?: boolean;
  /** Items per forward on a model whose maxBatch is 1 (forwardEach): the loop's batching runs, the items in turn. */
  maxBatch?: number;
}

/**
 * Document pieces posted to the worker ahead of its ingestion: tokenizing runs at the pace the worker inserts (which
 * decode steps have priority over), instead of taking a core from the streams for the whole post at once.
 */
const PIECES_AHEAD = 4;
/** How long shutdown waits for the worker to save the tries and release the model. */
const CLOSE_BOUND_MS = 10_000;
/** How long terminating a worker may take before it is left behind (it may be inside native code). */
const TERMINATE_BOUND_MS = 2000;
/** First wait before loading the model again after a failed restart; doubles up to the max. */
const RESTART_BACKOFF_MS = 500;
const RESTART_BACKOFF_MAX_MS = 30_000;

/**
 * Starts the worker that loads the model, waits until it is ready, and returns the engine the server talks to.
 * The tokenizer is loaded on this thread too: chat rendering, encoding and detokenizing never wait behind a forward.
 */
export async function createEngine(requested: EngineOptions, log: Log = (m) => console.error(m), hooks: TestHooks = {}): Promise<Engine & ReplicaTries> {
  // A hub id becomes the directory it was downloaded to, served under the id the user gave.
  const local = await ensureModelLocal(requested.model, requested.cacheDir, requested.hub ?? { endpoint: 'https://huggingface.co', token: null }, log);
  const options: EngineOptions =
    local === requested.model ? requested : { ...requested, model: local, modelId: requested.modelId ?? requested.model! };
  const tokenizer = await loadTokenizer(options.model);
  const engine = new WorkerEngine(tokenizer, options, modelFingerprint(tokenizer), log, hooks);
  await engine.boot();
  return engine;
}

type Reply = { resolve: (value: unknown) => void; reject: (err: Error) => void };

/**
 * The engine on the HTTP thread: owns the queue and the jobs' HTTP-side halves, and supervises the worker that
 * owns the model. A worker that exits, throws, or spends longer than the watchdog on one unit of work is replaced:
 * its jobs fail with EngineRestartingError (503), the engine reports `restarting` (so /ready says 503), a new worker
 * loads the model and restores the tries from the last snapshot, and jobs still queued then start on it. Tries are
 * not mirrored on this thread: a crashed worker's state is not trusted, and doubling every trie's memory to keep
 * what was learnt since the last snapshot is not worth it (replication, when configured, refills them).
 */
export class WorkerEngine implements Engine, ReplicaTries {
  models: readonly ServedModel[] = [];
  info!: ModelInfo;
  private worker: Worker | null = null;
  /** A worker still loading the model (first start or restart), so shutdown can stop it too. */
  private loading: Worker | null = null;
  private state: EngineState = 'starting';
  /** See WorkerData.heartbeat; a fresh buffer per worker, so a wedged old one cannot write into the new one's. */
  private beat = new Float64Array(new SharedArrayBuffer(HEARTBEAT_BYTES));
  /** Document pieces posted to the current worker (compared with its HEARTBEAT_PIECES_DONE). */
  private piecesPosted = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private restarts = 0;
  private readonly jobs = new Map<number, EngineJob>();
  /**
   * Jobs handed to the worker, and the K/V bytes they reserved (by job id). A job starts when both the running
   * count (maxRunning) and the K/V budget allow it; the others wait here in order.
   */
  private inWorker = 0;
  private readonly kvReserved = new Map<number, number>();
  private kvReservedBytes = 0;
  private readonly pending: { job: EngineJob; kvBytes: number; start: () => void }[] = [];
  private nextId = 1;
  private readonly replies = new Map<number, Reply>();
  private closing = false;
  private grammarVocabSent = false;
  /** Trie sizes as of the last finished job (the worker reports them with each job's end). */
  private lastTrieStats: TrieStats = { global: 0, sessions: 0, tenants: 0, sessionCount: 0, evictedTenants: 0 };
  private readonly totals = { jobs: 0, steps: 0, draftTokens: 0, acceptedTokens: 0, generatedTokens: 0 };
  private readonly learnedListeners: ((tenant: string, sessionId: string | null, exchange: Exchange) => void)[] = [];
  private readonly restartListeners: (() => void)[] = [];

  constructor(
    private readonly tok: TextTokenizer,
    private readonly options: EngineOptions,
    private readonly fingerprint: string,
    private readonly log: Log,
    private readonly hooks: TestHooks,
  ) {}

  private get testFaults(): boolean {
    return this.hooks.faults === true;
  }

  /** Loads the model in a first worker; throws ModelLoadError when it cannot. */
  async boot(): Promise<void> {
    const ready = await this.spawn();
    this.info = ready.info;
    this.models = [{ id: ready.info.id, contextLength: ready.info.contextLength, created: Math.floor(Date.now() / 1000), executionProvider: ready.info.executionProvider }];
    this.state = 'ready';
    this.feedCorpus();
    const period = Math.max(50, Math.min(1000, this.options.watchdogMs / 4));
    this.watchdog = setInterval(() => this.checkWatchdog(), period);
    this.watchdog.unref();
  }

  tokenizer(modelId: string): TextTokenizer {
    this.requireModel(modelId);
    return this.tok;
  }

  submit(modelId: string, spec: JobSpec): Job {
    this.requireModel(modelId);
    if (this.closing) throw new UnavailableError('the server is shutting down', 1);
    if (this.state !== 'ready') throw new EngineRestartingError('The engine is restarting after a worker failure; retry shortly.', 2);
    const context = this.info.contextLength;
    if (spec.promptIds.length === 0) throw new InvalidRequestError('the prompt is empty: there is nothing to condition the completion on');
    if (spec.promptIds.length + spec.maxTokens > context) {
      throw new ContextLengthError(
        `This model's maximum context length is ${context} tokens. However, you requested ` +
          `${spec.promptIds.length + spec.maxTokens} tokens (${spec.promptIds.length} in the prompt, ` +
          `${spec.maxTokens} for the completion). Please reduce the prompt or max_tokens.`,
      );
    }
    const budget = this.options.kvBudgetBytes;
    if (spec.fitMaxTokens) {
      const fit = Math.floor((budget - this.maskBytes(spec)) / this.info.kvBytesPerToken) - spec.promptIds.length - draftRows(spec);
      if (fit >= 1 && fit < spec.maxTokens) spec = { ...spec, maxTokens: fit };
    }
    const kvBytes = this.kvBytes(spec);
    if (kvBytes > budget) {
      const mask = this.maskBytes(spec);
      const tokens = (kvBytes - mask) / this.info.kvBytesPerToken;
      throw new KvBudgetError(
        `This request needs ${mib(kvBytes)} MiB of K/V memory (${tokens} tokens: prompt, max_tokens and one draft, at ` +
          `${this.info.kvBytesPerToken} bytes each, and ${mib(mask)} MiB of draft attention mask), more than this server's ` +
          `K/V budget of ${mib(budget)} MiB for all running requests together. Please reduce max_tokens or the prompt.`,
      );
    }
    if (!(this.pending.length === 0 && this.fits(kvBytes)) && this.pending.length >= this.options.maxQueued) {
      throw new QueueFullError(
        `too many requests: ${this.pending.length} waiting and ${this.inWorker} running; retry shortly`,
        1,
      );
    }
    const hints = spec.constraint ? this.encodeHints(constraintHints(spec.constraint)) : [];
    const jobId = this.nextId++;
    const group = spec.sharesDraftsWith instanceof EngineJob ? spec.sharesDraftsWith.numericId : jobId;
    const job = new EngineJob(randomUUID(), jobId, this.tok, spec.stop, spec.promptIds, () => this.stopJob(jobId));
    this.jobs.set(jobId, job);
    this.totals.jobs++;
    const start = () => {
      this.inWorker++;
      this.kvReserved.set(jobId, kvBytes);
      this.kvReservedBytes += kvBytes;
      // Here, not at submit: a queued job may start on a worker that replaced the one it was submitted to.
      if (spec.constraint) this.sendGrammarVocab();
      this.post({
        type: 'start',
        job: {
          jobId,
          group,
          promptIds: spec.promptIds,
          maxTokens: spec.maxTokens,
          sampling: spec.sampling,
          logprobs: spec.logprobs,
          lookahead: spec.lookahead,
          predictionIds: spec.predictionIds ?? [],
          ignoreEos: spec.ignoreEos === true,
          promptLogprobs: spec.promptLogprobs === true,
          constraint: spec.constraint ?? null,
          constraintHints: hints,
          sessionId: spec.sessionId ?? null,
          tenant: spec.tenant ?? 'default',
        },
      });
    };
    if (this.pending.length === 0 && this.fits(kvBytes)) start();
    else this.pending.push({ job, kvBytes, start });
    if (spec.signal) {
      const signal = spec.signal;
      if (signal.aborted) this.abortJob(jobId, signal.reason);
      else signal.addEventListener('abort', () => this.abortJob(jobId, signal.reason), { once: true });
    }
    return job;
  }

  /**
   * The one entry point for documents into a tenant's global trie (the corpus at start uses it too). Text is
   * tokenized here a piece at a time, yielding between pieces, and the worker inserts the pieces in slices between
   * decode steps; resolves with the tokens inserted once all of them are in the tries.
   */
  async addDocuments(tenant: string, texts: string[]): Promise<number> {
    const worker = this.requireWorker();
    let tokens = 0;
    for (const text of texts) {
      const pieces = splitText(text, PIECE_CHARS);
      for (let i = 0; i < pieces.length; i++) {
        const ids = Int32Array.from(this.tok.encode(pieces[i], { addSpecialTokens: false }));
        tokens += ids.length;
        while (this.worker === worker && this.piecesPosted - this.beat[HEARTBEAT_PIECES_DONE] >= PIECES_AHEAD) await sleep(2);
        if (this.worker !== worker) throw new EngineRestartingError('The engine restarted while these documents were being added; post them again.', 2);
        worker.postMessage({ type: 'document-piece', tenant, ids, end: i === pieces.length - 1 } satisfies ToWorker, [ids.buffer]);
        this.piecesPosted++;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    await this.ask({ type: 'documents-done', requestId: 0 });
    return tokens;
  }

  /** Forgets a session's trie; false when there was none. */
  async dropSession(tenant: string, sessionId: string): Promise<boolean> {
    this.requireWorker();
    return (await this.ask({ type: 'drop-session', requestId: 0, tenant, sessionId })) === true;
  }

  onLearned(listener: (tenant: string, sessionId: string | null, exchange: Exchange) => void): void {
    this.learnedListeners.push(listener);
  }

  onRestarted(listener: () => void): void {
    this.restartListeners.push(listener);
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
      state: this.state,
      restarts: this.restarts,
      running: this.inWorker,
      queued: this.pending.length,
      kv: { reservedBytes: this.kvReservedBytes, budgetBytes: this.options.kvBudgetBytes },
      trieNodes: { global: this.lastTrieStats.global, sessions: this.lastTrieStats.sessions },
      tenants: this.lastTrieStats.tenants,
      sessions: this.lastTrieStats.sessionCount,
      evictedTenants: this.lastTrieStats.evictedTenants,
      totals: { ...this.totals },
    };
  }

  /** Test-only (see TestHooks): breaks the worker, or the job's next forward (`bad-forward`), the way a bug would. */
  injectFault(kind: WorkerFault, job?: Job): void {
    if (!this.testFaults) throw new Error('fault injection is off (a test-only hook)');
    this.post({ type: 'fault', kind, ...(job instanceof EngineJob && { jobId: job.numericId }) });
  }

  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    for (const { job } of this.pending.splice(0)) {
      job.fail(shuttingDown());
      this.jobs.delete(job.numericId);
    }
    const deadline = Date.now() + graceMs;
    while (this.jobs.size > 0 && Date.now() < deadline) await sleep(20);
    for (const id of this.jobs.keys()) this.abortJob(id, shuttingDown());
    if (this.worker && this.state === 'ready') {
      // Saves the tries; bounded, so a wedged worker cannot hold shutdown.
      await Promise.race([this.ask({ type: 'close', requestId: 0 }).catch((err: Error) => this.log(`engine worker close: ${err.message}`)), sleep(CLOSE_BOUND_MS)]);
    }
    await this.stop();
  }

  async terminate(): Promise<void> {
    this.closing = true;
    this.pending.length = 0;
    for (const [id, job] of this.jobs) {
      this.post({ type: 'abort', jobId: id });
      job.fail(shuttingDown('the server is stopping now'));
    }
    // Terminating the worker inside an ORT forward aborts the whole process: wait (briefly) for the step to end.
    const deadline = Date.now() + 2000;
    while (this.inWorker > 0 && this.worker && Date.now() < deadline) await sleep(5);
    await this.stop();
  }

  /** Ends supervision and the worker(s), each within TERMINATE_BOUND_MS. */
  private async stop(): Promise<void> {
    this.state = 'closed';
    if (this.watchdog) clearInterval(this.watchdog);
    const workers = [this.worker, this.loading].filter((w): w is Worker => w !== null);
    this.worker = null;
    this.loading = null;
    this.failReplies(new UnavailableError('the server is shutting down', 1));
    await Promise.race([Promise.all(workers.map((w) => w.terminate().catch(() => 0))), sleep(TERMINATE_BOUND_MS)]);
  }

  /** A new worker with the model loaded (and the tries restored), listened to only once it is ready. */
  private spawn(): Promise<{ info: ModelInfo }> {
    // onnxruntime 1.30 records telemetry on Linux unless told not to: files under ~/.cache and /tmp, written by every
    // process that opens a session. Set on the main thread, whose environment the worker's native code reads.
    process.env.ORT_DISABLE_TELEMETRY ??= '1';
    const heartbeat = new SharedArrayBuffer(HEARTBEAT_BYTES);
    const worker = new Worker(new URL('../worker-entry.mjs', import.meta.url), {
      argv: [new URL('./worker', import.meta.url).href],
      workerData: {
        options: this.options,
        fingerprint: this.fingerprint,
        heartbeat,
        ...(this.testFaults && { testFaults: true }),
        ...(this.hooks.maxBatch !== undefined && { testMaxBatch: this.hooks.maxBatch }),
      } satisfies WorkerData,
    });
    this.loading = worker;
    return new Promise<{ info: ModelInfo }>((resolve, reject) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.type === 'log') this.log(msg.message);
        else if (msg.type === 'ready') {
          cleanup();
          this.loading = null;
          this.beat = new Float64Array(heartbeat);
          this.piecesPosted = 0;
          this.attach(worker);
          resolve(msg);
        } else if (msg.type === 'load-failed') {
          cleanup();
          void worker.terminate();
          reject(new ModelLoadError(msg.message));
        }
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new ModelLoadError(`the engine worker exited with code ${code} while loading the model`));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (this.loading === worker) this.loading = null;
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    this.grammarVocabSent = false;
    worker.on('message', (msg: FromWorker) => {
      if (this.worker === worker) this.onMessage(msg);
    });
    worker.on('error', (err) => this.workerDown(worker, `crashed: ${err.message}`));
    worker.on('exit', (code) => this.workerDown(worker, `exited (code ${code})`));
  }

  private checkWatchdog(): void {
    const since = this.beat[HEARTBEAT_BUSY_SINCE];
    if (!this.worker || since === 0 || Date.now() - since <= this.options.watchdogMs) return;
    this.workerDown(this.worker, `is wedged: one unit of work has run for ${Date.now() - since} ms, past the ${this.options.watchdogMs} ms watchdog`);
  }

  /**
   * The worker is gone or useless: fail what it held, say so, replace it. Jobs still waiting in the queue keep
   * their place and start on the new worker.
   */
  private workerDown(worker: Worker, why: string): void {
    if (worker !== this.worker) return;
    this.worker = null;
    void worker.terminate().catch(() => 0);
    if (this.state === 'closed') return;
    const waiting = new Set(this.pending.map((p) => p.job));
    const lost = [...this.jobs].filter(([, job]) => !waiting.has(job));
    this.log(`engine worker ${why}; failing its ${lost.length} jobs and restarting it`);
    const err = new EngineRestartingError('The engine worker failed while running this request and is being restarted; retry shortly.', 5);
    for (const [id, job] of lost) {
      job.fail(err);
      this.jobs.delete(id);
    }
    this.inWorker = 0;
    this.kvReserved.clear();
    this.kvReservedBytes = 0;
    this.failReplies(err);
    this.state = 'restarting';
    void this.restart();
  }

  private async restart(): Promise<void> {
    for (let wait = RESTART_BACKOFF_MS; this.state === 'restarting'; wait = Math.min(2 * wait, RESTART_BACKOFF_MAX_MS)) {
      try {
        await this.spawn();
      } catch (err) {
        this.log(`engine worker restart failed: ${(err as Error).message}; trying again in ${wait} ms`);
        await sleep(wait);
        continue;
      }
      if (this.state !== 'restarting') {
        // Shut down while the model was loading.
        await this.stop();
        return;
      }
      this.state = 'ready';
      this.restarts++;
      this.log(`engine worker restarted (${this.restarts} restart${this.restarts === 1 ? '' : 's'} since start); serving again`);
      for (const listener of this.restartListeners) listener();
      this.startWaiting();
      // The corpus may have been removed or half-written since start: the restarted worker serves without it.
      try {
        this.feedCorpus();
      } catch (err) {
        this.log(`global trie: corpus ${this.options.corpus} not fed: ${(err as Error).message}`);
      }
      return;
    }
  }

  private feedCorpus(): void {
    const path = this.options.corpus;
    if (!path) return;
    const texts = readCorpus(path);
    this.addDocuments('default', texts).then(
      (tokens) => this.log(`global trie: fed ${tokens} tokens from ${texts.length} documents in ${path}`),
      (err: Error) => this.log(`global trie: corpus ${path} not fed: ${err.message}`),
    );
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

  private requireWorker(): Worker {
    if (this.closing || this.state === 'closed') throw new UnavailableError('the server is shutting down', 1);
    if (!this.worker) throw new EngineRestartingError('The engine is restarting after a worker failure; retry shortly.', 2);
    return this.worker;
  }

  /**
   * K/V bytes a job reserves while it runs: its prompt, all it may generate, and one draft beyond that; and its
   * draft's attention mask buffer (see maskBytes).
   */
  private kvBytes(spec: JobSpec): number {
    return (spec.promptIds.length + spec.maxTokens + draftRows(spec)) * this.info.kvBytesPerToken + this.maskBytes(spec);
  }

  /** A job's tree-mask buffer (Generation): a row over the whole context per draft token, 134 MB at 128k × 256. */
  private maskBytes(spec: JobSpec): number {
    const rows = draftRows(spec);
    return rows * (this.info.contextLength + rows) * Float32Array.BYTES_PER_ELEMENT;
  }

  /**
   * A schema's hints as token ids, a context's worth in all: megabytes of enum strings become no more drafting
   * material (nor tokenizing work here) than a context holds.
   */
  private encodeHints(texts: string[]): number[][] {
    const hints: number[][] = [];
    let room = this.info.contextLength;
    for (const text of texts) {
      if (room <= 0) break;
      const { ids } = encodeAtMost(this.tok, text, room);
      hints.push(ids);
      room -= ids.length;
    }
    return hints;
  }

  private fits(kvBytes: number): boolean {
    return this.inWorker < this.options.maxRunning && this.kvReservedBytes + kvBytes <= this.options.kvBudgetBytes;
  }

  /**
   * Starts waiting jobs in order while they fit; the first that does not holds the rest back (no starving it). Only
   * on a ready worker: one started while the worker is down would hold its K/V and a running slot for a start
   * message nobody receives, and the restarted worker would start nothing.
   */
  private startWaiting(): void {
    if (this.closing || this.state !== 'ready' || !this.worker) return;
    while (this.pending.length > 0 && this.fits(this.pending[0].kvBytes)) this.pending.shift()!.start();
  }

  private stopJob(jobId: number): void {
    this.post({ type: 'abort', jobId });
  }

  /**
   * Cancels a job for its request (client gone, timeout): the job fails here at once with the request's reason, so
   * the client gets its 504 or its stream end even when the worker does not answer; the worker is told to stop.
   */
  private abortJob(jobId: number, reason?: unknown): void {
    const job = this.jobs.get(jobId);
    if (!job || job.done) return;
    const error = reason instanceof Error ? reason : new AbortedError('the job was cancelled');
    const waiting = this.pending.findIndex((p) => p.job === job);
    if (waiting >= 0) {
      this.pending.splice(waiting, 1);
      this.jobs.delete(jobId);
      job.fail(error);
      // It may have been the one holding the others back.
      this.startWaiting();
      return;
    }
    this.post({ type: 'abort', jobId });
    job.fail(error);
  }

  private ask(msg: Extract<ToWorker, { requestId: number }>): Promise<unknown> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new EngineRestartingError('The engine is restarting after a worker failure; retry shortly.', 2));
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.replies.set(requestId, { resolve, reject });
      worker.postMessage({ ...msg, requestId });
    });
  }

  private failReplies(err: Error): void {
    for (const reply of this.replies.values()) reply.reject(err);
    this.replies.clear();
  }

  private post(msg: ToWorker): void {
    this.worker?.postMessage(msg);
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
        this.kvReservedBytes -= this.kvReserved.get(msg.jobId) ?? 0;
        this.kvReserved.delete(msg.jobId);
        this.startWaiting();
        if (!job) break;
        if (msg.type === 'failed') {
          job.fail(fromWire(msg.error));
        } else {
          this.totals.steps += msg.stats.steps;
          this.totals.draftTokens += msg.stats.draftTokens;
          this.totals.acceptedTokens += msg.stats.acceptedTokens;
          this.lastTrieStats = msg.tries;
          job.onDone(msg.reason, msg.stats, msg.promptLogprobs);
          this.totals.generatedTokens += job.generatedTokens;
        }
        break;
      }
      case 'reply': {
        const reply = this.replies.get(msg.requestId);
        this.replies.delete(msg.requestId);
        if (msg.error) reply?.reject(fromWire(msg.error));
        else reply?.resolve(msg.value);
        break;
      }
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

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

/** Jobs cut off by shutdown: not the client's fault nor a failure of ours, so a 503 that says when to retry. */
function shuttingDown(message = 'the server is shutting down'): UnavailableError {
  return new UnavailableError(`${message}; retry on another instance`, 1);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Cache rows a job's widest forward adds beyond its committed tokens. */
function draftRows(spec: JobSpec): number {
  return spec.lookahead.enabled ? spec.lookahead.decodingLength : 1;
}
