/**
 * The engine's worker thread: owns the ORT session, every job's KV cache and the lookahead tries, and runs the
 * decode loop. Every round, the running jobs' steps and prompt chunks go into one batched forward (see round()).
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { toWire } from '../errors.js';
import { loadModel } from '../model/load.js';
import { measureForwardCost } from '../model/runtime/forward-cost.js';
import type { CostPoint } from '../lookahead/index.js';
import type { BatchItem, LoadedModel } from '../model/types.js';
import { DraftingState } from './drafting.js';
import { GrammarCompilers } from './grammar/compiler.js';
import { Generation, reservedRows, type StepOutput } from './generation.js';
import { IngestQueue } from './ingest.js';
import { PrefillOrder } from './prefill-order.js';
import { PrefixCache } from './prefix-cache.js';
import { HEARTBEAT_BUSY_SINCE, HEARTBEAT_PIECES_DONE, type FromWorker, type ToWorker, type WorkerData, type WorkerFault, type WorkerJob } from './protocol.js';
import type { TokenLogprob } from './types.js';

const port = parentPort!;
const { options, fingerprint, heartbeat, testFaults, testMaxBatch } = workerData as WorkerData;
/** See WorkerData.heartbeat. */
const beat = new Float64Array(heartbeat);

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

interface Running {
  jobId: number;
  job: WorkerJob;
  gen: Generation;
  started: boolean;
  /** When the job joined the loop (performance.now()): with its prompt left, it orders prefill (see planPrefill). */
  arrived: number;
  /** What made the job fail; it leaves the loop at the end of the round (see sweep). */
  error: unknown;
  /** Tokens (and logprobs) decided but not yet sent to the main thread. */
  pending: number[];
  pendingLogprobs: TokenLogprob[];
}

/**
 * Token batches go to the main thread at most this often (and at a job's first token and its end). Waking the main
 * thread every ~1 ms step made it compete for the 2 cores with ORT's spinning thread pool: measured on chat-llama-5m,
 * plain decoding fell from ~1800 to ~420-1450 tok/s (forwards 1-3x slower). 20 ms is below what a reader notices.
 */
const FLUSH_MS = 20;

/**
 * While jobs decode, a slice of bulk work (document ingestion) gets this share of the time the last round of decode
 * steps took (within the bounds below), so other tenants' streams slow by at most about this factor; with nothing to
 * decode, slices are IDLE_SLICE_MS long, and messages (aborts, new jobs, close) are read between any two slices.
 */
const BULK_SHARE = 0.25;
const MIN_SLICE_MS = 0.2;
const MAX_SLICE_MS = 4;
const IDLE_SLICE_MS = 10;

class DecodeLoop {
  private readonly running = new Map<number, Running>();
  /** The running jobs in arrival order (streams are seated in turn from it). */
  private readonly order: Running[] = [];
  /** Where the next decode forward starts seating streams, when more run than one forward holds. */
  private cursor = 0;
  /** Whether the last forward was the streams' (then prompt chunks, if any wait, get the next one). */
  private decodedLast = false;
  private readonly prefillOrder: PrefillOrder;
  /** The prompts waiting for prefill, in the order they are served; reused every round. */
  private readonly prompts: Running[] = [];
  /** The jobs in the forward being run and their items, in the same order; reused every round. */
  private readonly seated: Running[] = [];
  private readonly items: BatchItem[] = [];
  private looping = false;
  private lastFlush = 0;

  /** Constrained jobs whose grammar is compiling, and whether they were aborted meanwhile. */
  private readonly preparing = new Map<number, { aborted: boolean }>();
  /** Test-only (WorkerFault 'bad-forward'): jobs whose next decode forward is made to throw. */
  private readonly poisoned = new Set<number>();

  constructor(
    private readonly model: LoadedModel,
    private readonly drafting: DraftingState,
    readonly grammars: GrammarCompilers,
    readonly bulk: IngestQueue,
    /** Items and tokens one forward carries at most. */
    private readonly maxItems: number,
    private readonly maxTokens: number,
    /** The model's measured forward costs: the longest one's cost per token first estimates prefill's. */
    costCurve: readonly CostPoint[],
    /**
     * Delivers the messages waiting on the port now; called before each round is planned. onnxruntime-node runs a
     * session synchronously on this thread, so messages sent during a forward wait in the port, and the event loop
     * would hand them over only after the next round was planned: a new prompt missed a whole forward. Measured at 8
     * clients on the 150M-cost model (closed-loop `load`, alternating runs), p50 time to first token was ×1.68–1.97
     * of 1 client taking messages before each round, against ×1.97–2.17.
     */
    private readonly inbox: () => void,
    /** Finished jobs' K/V for prompts that start the same way (null: off). */
    private readonly prefixes: PrefixCache | null,
  ) {
    this.prefillOrder = new PrefillOrder(costCurve);
  }

  async start(job: WorkerJob): Promise<void> {
    let gen: Generation;
    const state = { aborted: false };
    try {
      let filter = null;
      if (job.constraint) {
        this.preparing.set(job.jobId, state);
        filter = await this.grammars.filter(job.constraint, job.tenant).finally(() => this.preparing.delete(job.jobId));
      }
      const session = this.drafting.start(job);
      if (session?.unfilled) {
        this.bulk.pushFirst({ kind: 'request', trie: session.unfilled });
        this.wake();
      }
      // Safe between a forward's binding and its run (a constrained job starts after an await): a fork only reads its
      // source, which no forward holds, and writes a region of its own.
      const cached = job.promptLogprobs ? null : (this.prefixes?.take(job.tenant, job.promptIds, reservedRows(job, (session?.source ?? null) !== null)) ?? null);
      gen = new Generation(this.model, job, session?.source ?? null, session?.budget ?? null, filter, this.maxTokens, cached);
    } catch (err) {
      send({ type: 'failed', jobId: job.jobId, error: toWire(err) });
      return;
    }
    if (state.aborted) gen.abort();
    const run: Running = { jobId: job.jobId, job, gen, started: false, arrived: performance.now(), error: null, pending: [], pendingLogprobs: [] };
    this.running.set(job.jobId, run);
    this.order.push(run);
    this.wake();
  }

  poison(jobId: number): void {
    this.poisoned.add(jobId);
  }

  abort(jobId: number): void {
    const preparing = this.preparing.get(jobId);
    if (preparing) preparing.aborted = true;
    this.running.get(jobId)?.gen.abort();
  }

  /** Starts the loop if it is not running (new job, new bulk work). */
  wake(): void {
    if (!this.looping) void this.loop();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.running.size > 0 || this.bulk.pending) {
        const roundStart = performance.now();
        if (this.running.size > 0) await this.round();
        if (this.bulk.pending) {
          const decoding = this.running.size > 0;
          const budget = decoding ? Math.min(MAX_SLICE_MS, Math.max(MIN_SLICE_MS, (performance.now() - roundStart) * BULK_SHARE)) : IDLE_SLICE_MS;
          beat[HEARTBEAT_BUSY_SINCE] = Date.now();
          this.bulk.runSlice(budget);
          // Let aborts, new jobs and close in: bulk work alone never yields otherwise.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        if (performance.now() - this.lastFlush >= FLUSH_MS) {
          for (const run of this.order) this.flush(run);
          this.lastFlush = performance.now();
        }
      }
    } finally {
      beat[HEARTBEAT_BUSY_SINCE] = 0;
      this.looping = false;
    }
  }

  /**
   * One forward: schedule (each seated job plans its item) → forward (one forwardBatch) → verify and keep (each job
   * completes from its own result). Streams' steps and prompt chunks take turns, each kind in forwards of its own.
   * Attention is per sequence, so a chunk could ride in the streams' forward at the cost of its own tokens, but
   * measured that way (150M-cost model, 8 clients, closed loop) drafts sized behind a chunk shrank (1.24 tokens per
   * step against 2.12), aggregate tok/s fell ×0.90 and time to first token rose ×1.08. A decode forward
   * seats up to maxItems streams (in turn when more run) within maxTokens tokens: each is sure of one token, and
   * drafts are sized from what is left, each knowing the tokens already planned into the forward. A prefill forward
   * takes prompt chunks (see planPrefill for their order).
   */
  private async round(): Promise<void> {
    beat[HEARTBEAT_BUSY_SINCE] = Date.now();
    this.inbox();
    let streams = 0;
    let prompts = 0;
    for (const run of this.order) {
      if (run.gen.finished) continue;
      if (run.gen.prefilling) prompts++;
      else streams++;
    }
    // One forward each, in turn: waiting prompts get every other forward, so a new prompt's first token waits for
    // its own chunks and as many of the streams' forwards, not for a whole round of them. A prefill forward fills the
    // token budget (--max-batch-tokens), which bounds how long it holds the streams up. Chunks of 128 while streams
    // ran (150M-cost model, 8 clients, budget 256) gave prefill less of the machine: prompts queued, and p50 time to
    // first token was ×2.1–2.6 of 1 client against ×1.85–2.0 (pairs of runs, alternating), at the same tok/s.
    const prefill = prompts > 0 && (streams === 0 || this.decodedLast);
    this.decodedLast = !prefill;
    this.seated.length = 0;
    this.items.length = 0;
    const used = prefill ? this.planPrefill() : this.planDecode(streams);
    if (this.items.length > 0) {
      const ms = await this.forward(used);
      if (prefill) this.prefillOrder.observe(ms, used);
    }
    this.sweep();
  }

  /**
   * Seats the waiting prompts' next chunks within the token budget, in PrefillOrder, until the forward is long
   * enough to cost the least per token (PrefillOrder.enough); returns the tokens planned.
   */
  private planPrefill(): number {
    const prompts = this.prompts;
    prompts.length = 0;
    for (const run of this.order) if (!run.gen.finished && run.gen.prefilling) prompts.push(run);
    this.prefillOrder.sort(prompts);
    let used = 0;
    for (const run of prompts) {
      if (this.items.length === this.maxItems || used >= this.maxTokens || used >= this.prefillOrder.enough) break;
      used += this.plan(run, used, this.maxTokens - used);
    }
    return used;
  }

  /** Seats the next streams in turn, each sure of a token and its draft sized from what is left; returns the tokens planned. */
  private planDecode(streams: number): number {
    const n = this.order.length;
    const seats = Math.min(this.maxItems, this.maxTokens, streams);
    let used = 0;
    let seated = 0;
    let i = 0;
    for (; i < n && seated < seats; i++) {
      const run = this.order[(this.cursor + i) % n];
      if (run.gen.finished || run.gen.prefilling) continue;
      seated++;
      // Every seat still to fill holds at least its root: the draft is sized for a forward that carries them too.
      used += this.plan(run, used + (seats - seated), this.maxTokens - used - (seats - seated), seats);
    }
    this.cursor = (this.cursor + i) % n;
    return used;
  }

  /** Adds the job's item to the round; returns its tokens (0 when planning failed: the job failed alone). */
  private plan(run: Running, others: number, limit: number, items = 1): number {
    try {
      const item = run.gen.plan(others, limit, items);
      // A decode item's tokens are the job's own buffer (a prompt chunk's are its context): safe to spoil.
      if (this.poisoned.size > 0 && !run.gen.prefilling && this.poisoned.delete(run.jobId)) item.input.tokens[0] = this.model.info.vocabSize + 1;
      this.seated.push(run);
      this.items.push(item);
      return item.input.tokens.length;
    } catch (err) {
      run.gen.cancel();
      this.fail(run, err);
      return 0;
    }
  }

  /** Runs the round's items and hands each job its result; returns how long the forward took (0 when it threw). */
  private async forward(total: number): Promise<number> {
    const count = this.items.length;
    const f0 = performance.now();
    let outputs: (Float32Array | Int32Array)[];
    try {
      outputs = await this.model.forwardBatch(this.items);
    } catch (err) {
      if (count > 1) await this.forwardApart();
      else {
        this.seated[0].gen.cancel();
        this.fail(this.seated[0], err);
      }
      return 0;
    }
    const forwardMs = performance.now() - f0;
    for (let i = 0; i < count; i++) this.complete(this.seated[i], outputs[i], forwardMs, total, count);
    return forwardMs;
  }

  /**
   * A batched forward threw: each item runs again alone (from the cache length it was planned at), so only a job
   * whose own forward throws fails, and the others go on.
   */
  private async forwardApart(): Promise<void> {
    for (let i = 0; i < this.seated.length; i++) {
      const run = this.seated[i];
      const item = this.items[i];
      const f0 = performance.now();
      try {
        run.gen.rewind();
        const [output] = await this.model.forwardBatch([item]);
        this.complete(run, output, performance.now() - f0, item.input.tokens.length, 1);
      } catch (err) {
        run.gen.cancel();
        this.fail(run, err);
      }
    }
  }

  private complete(run: Running, output: Float32Array | Int32Array, forwardMs: number, total: number, items: number): void {
    let out: StepOutput | null;
    try {
      out = run.gen.complete(output, forwardMs, total, items);
    } catch (err) {
      this.fail(run, err);
      return;
    }
    // An abort that arrived during the forward wins: complete() returned nothing and the job ends in sweep().
    if (!out) return;
    for (const t of out.tokens) run.pending.push(t);
    if (out.logprobs) for (const l of out.logprobs) run.pendingLogprobs.push(l);
    // The first token goes at once (time to first token); later ones in batches.
    if (!run.started) {
      run.started = true;
      this.flush(run);
    }
  }

  /** Ended and failed jobs leave the loop, the ended ones with their last tokens and their stats. */
  private sweep(): void {
    for (let i = this.order.length - 1; i >= 0; i--) {
      const run = this.order[i];
      if (!run.gen.finished) continue;
      if (run.error !== null) {
        this.finish(run);
        send({ type: 'failed', jobId: run.jobId, error: toWire(run.error) });
        continue;
      }
      if (run.gen.endReason !== 'aborted') this.flush(run);
      this.finish(run);
      const promptLogprobs = run.gen.promptLogprobs;
      send({ type: 'done', jobId: run.jobId, reason: run.gen.endReason!, stats: run.gen.stats, tries: this.drafting.trieStats(), ...(promptLogprobs && { promptLogprobs }) });
    }
  }

  /** The job failed alone: it plans nothing more, teaches nothing, and leaves at the end of the round. */
  private fail(run: Running, err: unknown): void {
    run.error = err;
    run.gen.abort();
  }

  private flush(run: Running): void {
    if (run.pending.length === 0) return;
    const logprobs = run.job.logprobs !== null ? run.pendingLogprobs : undefined;
    send({ type: 'tokens', jobId: run.jobId, tokens: run.pending, logprobs });
    run.pending = [];
    run.pendingLogprobs = [];
  }

  /** The job leaves the loop; a failure to learn from its answer is logged, never fatal to the worker. */
  private finish(run: Running): void {
    const { jobId } = run;
    this.running.delete(jobId);
    this.order.splice(this.order.indexOf(run), 1);
    try {
      const kept = this.prefixes && run.error === null ? run.gen.detach() : null;
      if (kept) this.prefixes!.put(run.job.tenant, kept.tokens, kept.seq);
      run.gen.dispose();
      const aborted = run.gen.endReason === 'aborted';
      this.drafting.finish(run.job, run.gen.answer, aborted);
      if (options.shareAnswers && !aborted) {
        const { tenant, sessionId, promptIds } = run.job;
        send({ type: 'learned', tenant, sessionId, exchange: { prompt: promptIds, answer: Array.from(run.gen.answer) } });
      }
    } catch (err) {
      send({ type: 'log', message: `job ${jobId}: its answer could not be added to the tries: ${(err as Error).message}` });
    }
  }
}

async function main(): Promise<void> {
  let model: LoadedModel;
  try {
    model = await loadModel(options, (message) => send({ type: 'log', message }));
  } catch (err) {
    send({ type: 'load-failed', name: (err as Error).name, message: (err as Error).message });
    return;
  }
  // The adaptive draft budget weighs acceptance against this curve; it is refreshed from real steps later.
  const past = Math.max(0, Math.min(256, model.info.contextLength - 64));
  const costCurve = await measureForwardCost(model, [1, 2, 4, 8, 16, 32, 64].filter((k) => past + k <= model.info.contextLength), past, 5);
  send({ type: 'log', message: `forward cost at past ${past}: ${costCurve.map((p) => `k=${p.k} ${p.ms.toFixed(2)} ms`).join(', ')}` });
  const drafting = new DraftingState(options, model.info, costCurve, fingerprint);
  for (const message of drafting.restore()) send({ type: 'log', message });
  const bulk = new IngestQueue(
    drafting,
    (requestId) => {
      send({ type: 'reply', requestId, value: true });
      send({ type: 'tries', tries: drafting.trieStats() });
    },
    () => beat[HEARTBEAT_PIECES_DONE]++,
    (err) => {
      beat[HEARTBEAT_PIECES_DONE]++;
      send({ type: 'log', message: `a document piece was skipped: ${err.message}` });
    },
  );
  // A test may batch on a model that runs items in turn; a model that really batches keeps its own bound.
  const maxItems = model.info.maxBatch > 1 ? model.info.maxBatch : (testMaxBatch ?? 1);
  const inbox = () => {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) deliver(m.message as ToWorker);
  };
  const prefixes = options.prefixCacheBytes > 0 ? new PrefixCache(options.prefixCacheBytes) : null;
  const loop = new DecodeLoop(model, drafting, new GrammarCompilers(model.info.vocabSize, model.info.eosTokenIds), bulk, maxItems, options.maxBatchTokens, costCurve, inbox, prefixes);
  const deliver = (msg: ToWorker): void => {
    // A throwing handler must not take the worker (and every running job) down with it.
    handle(msg).catch((err: unknown) => {
      if ('requestId' in msg) send({ type: 'reply', requestId: msg.requestId, value: null, error: toWire(err) });
      else send({ type: 'log', message: `worker: ${msg.type} failed: ${(err as Error).message}` });
    });
  };
  port.on('message', deliver);
  const handle = async (msg: ToWorker): Promise<void> => {
    switch (msg.type) {
      case 'start':
        void loop.start(msg.job);
        break;
      case 'grammar-vocab':
        loop.grammars.setVocab(msg.tokens);
        break;
      case 'abort':
        loop.abort(msg.jobId);
        break;
      case 'document-piece':
        bulk.push({ kind: 'piece', tenant: msg.tenant, ids: msg.ids, end: msg.end });
        loop.wake();
        break;
      case 'documents-done':
        bulk.push({ kind: 'marker', requestId: msg.requestId });
        loop.wake();
        break;
      case 'drop-session': {
        const deleted = drafting.dropSession(msg.tenant, msg.sessionId);
        send({ type: 'reply', requestId: msg.requestId, value: deleted });
        send({ type: 'tries', tries: drafting.trieStats() });
        break;
      }
      case 'exchanges':
        drafting.addExchanges(msg.tenant, msg.sessionId, msg.exchanges);
        send({ type: 'reply', requestId: msg.requestId, value: true });
        break;
      case 'export-tries':
        send({ type: 'reply', requestId: msg.requestId, value: drafting.exportGlobals() });
        break;
      case 'import-tries':
        try {
          drafting.importGlobals(msg.bytes);
          send({ type: 'reply', requestId: msg.requestId, value: null });
        } catch (err) {
          send({ type: 'reply', requestId: msg.requestId, value: (err as Error).message });
        }
        send({ type: 'tries', tries: drafting.trieStats() });
        break;
      case 'close': {
        for (const requestId of bulk.clear()) send({ type: 'reply', requestId, value: false });
        const saved = drafting.snapshot();
        if (saved) send({ type: 'log', message: saved });
        prefixes?.clear();
        await model.dispose();
        send({ type: 'reply', requestId: msg.requestId, value: true });
        break;
      }
      case 'fault':
        if (!testFaults) break;
        if (msg.kind === 'bad-forward') loop.poison(msg.jobId!);
        else injectFault(msg.kind);
        break;
    }
  };
  send({ type: 'ready', info: model.info, costCurve });
}

/** Test-only: a crash (an exception no handler catches) or a wedge (a unit of work that never ends). */
function injectFault(kind: Exclude<WorkerFault, 'bad-forward'>): void {
  if (kind === 'crash') {
    setImmediate(() => {
      throw new Error('injected worker crash');
    });
    return;
  }
  beat[HEARTBEAT_BUSY_SINCE] = Date.now();
  for (;;) {
    // Spins until the main thread terminates the worker.
  }
}

void main();
