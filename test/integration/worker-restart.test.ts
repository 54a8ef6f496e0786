import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectJob, GREEDY } from '../../src/engine/collect.js';
import type { WorkerEngine } from '../../src/engine/index.js';
import type { Job, JobSpec } from '../../src/engine/types.js';
import { LOOKAHEAD_OFF, startEngine, type TestEngine } from '../helpers/engine.js';

/**
 * A worker crashes while jobs wait in the queue (one runs at a time): what happens during the restart must not
 * keep the queued jobs from starting on the new worker.
 */
const dir = mkdtempSync(join(tmpdir(), 'lookahead-restart-'));
const corpus = join(dir, 'corpus.txt');
let t: TestEngine;
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);

beforeAll(async () => {
  writeFileSync(corpus, 'A lighthouse keeper kept the light burning through the storm.');
  process.on('unhandledRejection', onRejection);
  t = await startEngine(['--max-running', '1', '--context-length', '512', '--corpus', corpus], { faults: true });
});
afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

function submit(maxTokens: number, signal?: AbortSignal): Job {
  const spec: JobSpec = { promptIds: [40, 41, 42, 43], maxTokens, sampling: GREEDY, stop: [], logprobs: null, lookahead: LOOKAHEAD_OFF, ...(signal && { signal }) };
  return t.engine.submit(t.modelId, spec);
}

/**
 * Crashes the worker while a long job runs and jobs wait behind it (`queue` submits them), runs `during` while the
 * worker is down, and resolves with the queued jobs once the engine serves again.
 */
async function crashWhileQueued(queue: () => Job[], during: () => void): Promise<Job[]> {
  const engine = t.engine as WorkerEngine;
  const running = submit(400);
  void running.result.catch(() => {});
  await running[Symbol.asyncIterator]().next();
  const queued = queue();
  for (const job of queued) void job.result.catch(() => {});
  expect(engine.stats().queued).toBe(queued.length);
  engine.injectFault('crash');
  await until(() => engine.stats().state === 'restarting');
  during();
  await until(() => engine.stats().state === 'ready', 60_000);
  return queued;
}

/** Resolves with the job's tokens, or rejects if it has not ended within `ms`. */
function within(job: Job, ms: number): Promise<number[]> {
  const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`job not done within ${ms} ms`)), ms).unref());
  return Promise.race([collectJob(job).then((r) => r.ids), late]);
}

describe('worker restart', () => {
  it('a queued job cancelled while the worker is down does not start the next one into the void', async () => {
    const cancel = new AbortController();
    const [, next] = await crashWhileQueued(
      () => [submit(4, cancel.signal), submit(4)],
      () => cancel.abort(),
    );
    expect(await within(next, 20_000)).toHaveLength(4);
    expect(await within(submit(4), 20_000)).toHaveLength(4);
    expect(t.engine.stats()).toMatchObject({ running: 0, queued: 0, kv: { reservedBytes: 0 } });
  });

  it('a corpus removed since start: the restarted worker serves without it, queued jobs start, nothing is left unhandled', async () => {
    const [queued] = await crashWhileQueued(
      () => [submit(4)],
      () => rmSync(corpus),
    );
    expect(await within(queued, 20_000)).toHaveLength(4);
    expect(rejections).toEqual([]);
    expect(t.engine.stats()).toMatchObject({ state: 'ready', restarts: 2, running: 0, queued: 0 });
  });
});

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
