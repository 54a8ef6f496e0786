/**
 * The engine's worker thread: owns the ORT session, every job's KV cache and the lookahead tries, and runs the
 * decode loop. Jobs are interleaved one step at a time, so concurrent requests share the model fairly.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from '../model/load.js';
import { measureForwardCost } from '../model/runtime/forward-cost.js';
import type { LoadedModel } from '../model/types.js';
import { DraftingState } from './drafting.js';
import { Generation, type StepOutput } from './generation.js';
import type { FromWorker, ToWorker, WorkerData, WorkerJob } from './protocol.js';

const port = parentPort!;
const { options } = workerData as WorkerData;

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

interface Running {
  job: WorkerJob;
  gen: Generation;
  started: boolean;
}

class DecodeLoop {
  private readonly running = new Map<number, Running>();
  private looping = false;

  constructor(
    private readonly model: LoadedModel,
    private readonly drafting: DraftingState,
  ) {}

  start(job: WorkerJob): void {
    let gen: Generation;
    try {
      const session = this.drafting.start(job);
      gen = new Generation(this.model, job, session?.source ?? null, session?.budget ?? null);
    } catch (err) {
      send({ type: 'failed', jobId: job.jobId, name: (err as Error).name, message: (err as Error).message });
      return;
    }
    this.running.set(job.jobId, { job, gen, started: false });
    if (!this.looping) void this.loop();
  }

  abort(jobId: number): void {
    this.running.get(jobId)?.gen.abort();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.running.size > 0) {
        for (const [jobId, run] of this.running) {
          if (!run.gen.finished) {
            try {
              const out: StepOutput = run.started ? await run.gen.step() : await run.gen.prefill();
              run.started = true;
              // An abort that arrived during the forward wins: its tokens go nowhere.
              if (run.gen.endReason !== 'aborted') send({ type: 'tokens', jobId, ...out });
            } catch (err) {
              this.finish(jobId, run);
              send({ type: 'failed', jobId, name: (err as Error).name, message: (err as Error).message });
              continue;
            }
          }
          if (run.gen.finished) {
            this.finish(jobId, run);
            send({ type: 'done', jobId, reason: run.gen.endReason!, stats: run.gen.stats, tries: this.drafting.trieStats() });
          }
        }
      }
    } finally {
      this.looping = false;
    }
  }

  private finish(jobId: number, run: Running): void {
    this.running.delete(jobId);
    run.gen.dispose();
    this.drafting.finish(run.job, run.gen.answer, run.gen.endReason === 'aborted');
  }
}

async function main(): Promise<void> {
  let model: LoadedModel;
  try {
    model = await loadModel(options, (message) => send({ type: "log", message }));
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
  const loop = new DecodeLoop(model, drafting);
  port.on('message', async (msg: ToWorker) => {
    switch (msg.type) {
      case 'start':
        loop.start(msg.job);
        break;
      case 'abort':
        loop.abort(msg.jobId);
        break;
      case 'documents':
        drafting.addDocuments(msg.tenant, msg.docs);
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
