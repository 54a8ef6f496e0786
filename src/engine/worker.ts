/**
 * The engine's worker thread: owns the ORT session, every job's KV cache and the lookahead tries, and runs the
 * decode loop. Jobs are interleaved one step at a time, so concurrent requests share the model fairly.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from '../model/load.js';
import { measureForwardCost } from '../model/runtime/forward-cost.js';
import type { LoadedModel } from '../model/types.js';
import { DraftingState } from './drafting.js';
import { GrammarCompilers } from './grammar/compiler.js';
import { Generation, type StepOutput } from './generation.js';
import type { FromWorker, ToWorker, WorkerData, WorkerJob } from './protocol.js';
import type { TokenLogprob } from './types.js';

const port = parentPort!;
const { options } = workerData as WorkerData;

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

interface Running {
  job: WorkerJob;
  gen: Generation;
  started: boolean;
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

class DecodeLoop {
  private readonly running = new Map<number, Running>();
  private looping = false;
  private lastFlush = 0;

  /** Constrained jobs whose grammar is compiling, and whether they were aborted meanwhile. */
  private readonly preparing = new Map<number, { aborted: boolean }>();

  constructor(
    private readonly model: LoadedModel,
    private readonly drafting: DraftingState,
    readonly grammars: GrammarCompilers,
  ) {}

  async start(job: WorkerJob): Promise<void> {
    let gen: Generation;
    const state = { aborted: false };
    try {
      let filter = null;
      if (job.constraint) {
        this.preparing.set(job.jobId, state);
        filter = await this.grammars.filter(job.constraint).finally(() => this.preparing.delete(job.jobId));
      }
      const session = this.drafting.start(job);
      gen = new Generation(this.model, job, session?.source ?? null, session?.budget ?? null, filter);
    } catch (err) {
      send({ type: 'failed', jobId: job.jobId, name: (err as Error).name, message: (err as Error).message });
      return;
    }
    if (state.aborted) gen.abort();
    this.running.set(job.jobId, { job, gen, started: false, pending: [], pendingLogprobs: [] });
    if (!this.looping) void this.loop();
  }

  abort(jobId: number): void {
    const preparing = this.preparing.get(jobId);
    if (preparing) preparing.aborted = true;
    this.running.get(jobId)?.gen.abort();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.running.size > 0) {
        for (const [jobId, run] of this.running) {
          if (!run.gen.finished) {
            try {
              const first = !run.started;
              const out: StepOutput = first ? await run.gen.prefill() : await run.gen.step();
              run.started = true;
              // An abort that arrived during the forward wins: its tokens go nowhere.
              if (run.gen.endReason !== 'aborted') {
                for (const t of out.tokens) run.pending.push(t);
                if (out.logprobs) for (const l of out.logprobs) run.pendingLogprobs.push(l);
                // The first token goes at once (time to first token); later ones in batches.
                if (first) this.flush(jobId, run);
              }
            } catch (err) {
              this.finish(jobId, run);
              send({ type: 'failed', jobId, name: (err as Error).name, message: (err as Error).message });
              continue;
            }
          }
          if (run.gen.finished) {
            if (run.gen.endReason !== 'aborted') this.flush(jobId, run);
            this.finish(jobId, run);
            send({ type: 'done', jobId, reason: run.gen.endReason!, stats: run.gen.stats, tries: this.drafting.trieStats() });
          }
        }
        if (performance.now() - this.lastFlush >= FLUSH_MS) {
          for (const [jobId, run] of this.running) this.flush(jobId, run);
          this.lastFlush = performance.now();
        }
      }
    } finally {
      this.looping = false;
    }
  }

  private flush(jobId: number, run: Running): void {
    if (run.pending.length === 0) return;
    const logprobs = run.job.logprobs !== null ? run.pendingLogprobs : undefined;
    send({ type: 'tokens', jobId, tokens: run.pending, logprobs });
    run.pending = [];
    run.pendingLogprobs = [];
  }

  private finish(jobId: number, run: Running): void {
    this.running.delete(jobId);
    run.gen.dispose();
    const aborted = run.gen.endReason === 'aborted';
    this.drafting.finish(run.job, run.gen.answer, aborted);
    if (options.shareAnswers && !aborted) {
      const { tenant, sessionId, promptIds } = run.job;
      send({ type: 'learned', tenant, sessionId, exchange: { prompt: promptIds, answer: Array.from(run.gen.answer) } });
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
  const drafting = new DraftingState(options, model.info, costCurve);
  const restored = drafting.restore();
  if (restored) send({ type: 'log', message: restored });
  const loop = new DecodeLoop(model, drafting, new GrammarCompilers(model.info.vocabSize, model.info.eosTokenIds));
  port.on('message', async (msg: ToWorker) => {
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
      case 'documents':
        drafting.addDocuments(msg.tenant, msg.docs);
        send({ type: 'tries', tries: drafting.trieStats() });
        break;
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
      case 'drop-session':
        drafting.dropSession(msg.tenant, msg.sessionId);
        send({ type: 'tries', tries: drafting.trieStats() });
        break;
      case 'close':
        {
          const saved = drafting.snapshot();
          if (saved) send({ type: 'log', message: saved });
        }
        await model.dispose();
        send({ type: 'reply', requestId: msg.requestId, value: true });
        break;
    }
  });
  send({ type: 'ready', info: model.info, costCurve });
}

void main();
