import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppError } from '../../src/errors.js';
import { GREEDY } from '../../src/engine/collect.js';
import type { WorkerEngine } from '../../src/engine/index.js';
import type { JobResult, JobSpec, LookaheadOptions } from '../../src/engine/types.js';
import { mapError } from '../../src/server/errors.js';
import { CHAT_MODEL, LOOKAHEAD_OFF, SHARED, startEngine, type TestEngine } from '../helpers/engine.js';

/**
 * The batched decode loop: every round, the running jobs' steps and prompt chunks share one forward. A job's
 * output must not depend on what it was batched with (greedy and seeded sampling), a long prompt must not stall
 * the streams already running, and jobs start only while their K/V reservations fit the budget.
 *
 * The models here forward one sequence at a time (ModelInfo.maxBatch 1), so the engines run with the test hook
 * that batches up to 8 items anyway (they run in turn inside forwardBatch); a model that really batches uses its
 * own maxBatch, and these tests then exercise its batched graph.
 */
const BATCH = 8;
const ON: LookaheadOptions = { enabled: true, decodingLength: 16, branchLength: 8, layout: 'hier' };
const DEV = join(SHARED, 'datasets/rag-eval/dev.jsonl');
const haveChat = existsSync(CHAT_MODEL) && existsSync(DEV);
if (!haveChat) console.warn(`SKIPPED batched-decode tests on chat-llama-5m: ${SHARED} is absent (needs chat-llama-5m and rag-eval)`);

interface Run {
  ids: number[];
  result: JobResult;
}

/** Runs every prompt with at most `concurrency` jobs in the engine at once; results in prompt order. */
async function runAll(t: TestEngine, prompts: number[][], concurrency: number, spec: Partial<JobSpec>): Promise<Run[]> {
  const out: Run[] = new Array(prompts.length);
  let next = 0;
  const lane = async () => {
    while (next < prompts.length) {
      const i = next++;
      const { ids, result } = await t.run(prompts[i], spec);
      out[i] = { ids, result };
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return out;
}

/** Decode steps that shared their forward with other items, and the most items any forward held. */
function batching(runs: Run[]): { shared: number; widest: number } {
  let shared = 0;
  let widest = 0;
  for (const { result } of runs) {
    for (const [items, steps] of Object.entries(result.lookahead.batchItems)) {
      if (Number(items) > 1) shared += steps;
      widest = Math.max(widest, Number(items));
    }
  }
  return { shared, widest };
}

function firstDiff(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

function losslessSuite(name: string, flags: string[], loadPrompts: (t: TestEngine) => number[][], maxTokens: number): void {
  describe(`batched decoding is lossless: ${name}`, () => {
    let t: TestEngine;
    let prompts: number[][] = [];
    let reference: Run[] = [];
    let maxBatch = 1;

    beforeAll(async () => {
      t = await startEngine([...flags, '--max-running', String(BATCH)], { maxBatch: BATCH });
      maxBatch = Math.max(BATCH, (t.engine as WorkerEngine).info.maxBatch);
      prompts = loadPrompts(t);
      reference = await runAll(t, prompts, 1, { maxTokens, lookahead: LOOKAHEAD_OFF });
    }, 300_000);
    afterAll(() => t?.close());

    it('runs at least 100 distinct prompts', () => {
      expect(prompts.length).toBeGreaterThanOrEqual(100);
      expect(new Set(prompts.map((p) => p.join(','))).size).toBe(prompts.length);
      expect(reference.every((r) => r.ids.length > 0)).toBe(true);
    });

    for (const concurrency of [1, 4, 8]) {
      for (const lookahead of [false, true]) {
        if (concurrency === 1 && !lookahead) continue;
        it(`concurrency ${concurrency}, lookahead ${lookahead ? 'on' : 'off'}: every output equals plain decoding alone`, async () => {
          const runs = await runAll(t, prompts, concurrency, { maxTokens, lookahead: lookahead ? ON : LOOKAHEAD_OFF });
          for (let p = 0; p < prompts.length; p++) expect(firstDiff(runs[p].ids, reference[p].ids), `prompt ${p}: first differing token`).toBe(-1);
          const { shared, widest } = batching(runs);
          expect(widest).toBeLessThanOrEqual(maxBatch);
          // Alone, a job's forwards hold its item only; together, steps really share forwards.
          if (concurrency === 1) expect(widest).toBe(1);
          else expect(shared).toBeGreaterThan(0);
          if (lookahead) expect(runs.reduce((n, r) => n + r.result.lookahead.acceptedTokens, 0)).toBeGreaterThan(0);
        }, 300_000);
      }
    }

    it('seeded sampling gives in a batch of 8 what it gives alone, lookahead off and on', async () => {
      for (const lookahead of [LOOKAHEAD_OFF, ON]) {
        const picks = prompts.slice(0, BATCH);
        const sampled = (i: number): Partial<JobSpec> => ({
          maxTokens,
          lookahead,
          sampling: { temperature: 0.9, topP: 0.95, topK: 0, repetitionPenalty: 1.1, seed: 1000 + i },
        });
        const alone: number[][] = [];
        for (let i = 0; i < picks.length; i++) alone.push((await t.run(picks[i], sampled(i))).ids);
        const together = await Promise.all(picks.map((p, i) => t.run(p, sampled(i))));
        for (let i = 0; i < picks.length; i++) expect(together[i].ids, `seed ${1000 + i}`).toEqual(alone[i]);
        expect(batching(together.map(({ ids, result }) => ({ ids, result }))).shared).toBeGreaterThan(0);
        // Sampling really sampled: the draws differ from the greedy answers.
        expect(alone.some((ids, i) => firstDiff(ids, reference[i].ids) >= 0)).toBe(true);
      }
    }, 300_000);
  });
}

/** 120 distinct byte-tokenized prompts of different lengths (the synthetic model's tokenizer is bytes). */
function syntheticPrompts(t: TestEngine): number[][] {
  const tok = t.engine.tokenizer(t.modelId);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'river', 'stone', 'cloud', 'seven', 'quiet', 'orbit', 'maple', 'ember'];
  return Array.from({ length: 120 }, (_, i) => {
    const parts = Array.from({ length: 2 + (i % 9) }, (_, j) => words[(i * 7 + j * 5) % words.length]);
    return tok.encode(`${i}: ${parts.join(' ')}`, { addSpecialTokens: true });
  });
}

function ragPrompts(t: TestEngine): number[][] {
  const tok = t.engine.tokenizer(t.modelId);
  return readFileSync(DEV, 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, 100)
    .map((line) => {
      const { messages } = JSON.parse(line) as { messages: { role: string; content: string }[] };
      return tok.encode(tok.renderChat(messages), { addSpecialTokens: !tok.chatTemplateAddsBos });
    });
}

losslessSuite('synthetic model', [], syntheticPrompts, 24);
if (haveChat) losslessSuite('chat-llama-5m on rag-eval prompts', ['--model', CHAT_MODEL], ragPrompts, 16);
else describe.skip('batched decoding is lossless: chat-llama-5m (../shared/data absent)', () => it('skipped', () => {}));

/** A spec that never ends at EOS (the synthetic model's noise might), so a job runs exactly maxTokens. */
function endless(t: TestEngine, maxTokens: number, lookahead: LookaheadOptions = ON): Partial<JobSpec> {
  const eos = (t.engine as WorkerEngine).info.eosTokenIds;
  return { maxTokens, lookahead, sampling: { ...GREEDY, logitBias: Object.fromEntries(eos.map((id) => [id, -100])) } };
}

describe('admission by K/V memory', () => {
  let t: TestEngine;
  let perToken = 0;
  /** A drafting job's tree-mask buffer: a row over the whole context per draft token, counted in its reservation. */
  let mask = 0;
  const prompt = Array.from({ length: 10 }, (_, i) => 40 + i);

  beforeAll(async () => {
    t = await startEngine(['--kv-budget-mb', '1', '--max-running', '4', '--max-queued', '2']);
    const info = (t.engine as WorkerEngine).info;
    perToken = info.kvBytesPerToken;
    mask = ON.decodingLength * (info.contextLength + ON.decodingLength) * 4;
  }, 120_000);
  afterAll(() => t?.close());

  it('a second job that does not fit beside the first waits until the first ends; later ones keep their order', async () => {
    // Each reserves (10 + maxTokens + 16) tokens and its mask: more than half of the 1 MiB budget for a and b, less for c.
    const big = Math.floor(2 ** 20 / perToken / 2);
    expect(10 + big + ON.decodingLength).toBeGreaterThan(2 ** 20 / perToken / 2);
    expect(mask).toBeGreaterThan(0);
    const events: string[] = [];
    const watch = (name: string, maxTokens: number) => {
      const job = t.engine.submit(t.modelId, { promptIds: prompt, stop: [], logprobs: null, ...endless(t, maxTokens) } as JobSpec);
      const done = (async () => {
        let first = true;
        for await (const chunk of job) {
          if (first && chunk.tokens.length > 0) events.push(`${name} first token`);
          first = false;
        }
        events.push(`${name} done`);
        return job.result;
      })();
      return done;
    };
    const a = watch('a', big);
    const b = watch('b', big);
    const c = watch('c', 20);
    const s = t.engine.stats();
    expect(s.running).toBe(1);
    // c would fit beside a, but it does not overtake b.
    expect(s.queued).toBe(2);
    expect(s.kv.reservedBytes).toBe((10 + big + ON.decodingLength) * perToken + mask);
    expect(s.kv.budgetBytes).toBe(2 ** 20);
    // The queue is full: the next one is told to retry.
    let refused: unknown = null;
    try {
      t.engine.submit(t.modelId, { promptIds: prompt, stop: [], logprobs: null, ...endless(t, 20) } as JobSpec);
    } catch (err) {
      refused = err;
    }
    expect((refused as AppError).status).toBe(429);
    const results = await Promise.all([a, b, c]);
    expect(results.map((r) => r.completionTokens)).toEqual([big, big, 20]);
    expect(events.indexOf('b first token')).toBeGreaterThan(events.indexOf('a done'));
    expect(events.indexOf('c first token')).toBeGreaterThan(events.indexOf('a done'));
    expect(t.engine.stats().kv.reservedBytes).toBe(0);
  }, 120_000);

  it('a job that alone exceeds the budget is a 400 with a clear OpenAI error', () => {
    let thrown: unknown = null;
    try {
      t.engine.submit(t.modelId, { promptIds: prompt, stop: [], logprobs: null, ...endless(t, Math.ceil(2 ** 20 / perToken)) } as JobSpec);
    } catch (err) {
      thrown = err;
    }
    const mapped = mapError(thrown, 'req-1');
    expect(mapped.status).toBe(400);
    expect(mapped.body.error).toMatchObject({ type: 'invalid_request_error', param: 'max_tokens', code: 'kv_budget_exceeded' });
    expect(mapped.body.error.message).toMatch(/K\/V budget of 1\.0 MiB/);
    expect(t.engine.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it('a request that did not ask for max_tokens is lowered to what the budget lets one job hold, not refused', async () => {
    const room = Math.ceil(2 ** 20 / perToken);
    const job = t.engine.submit(t.modelId, { promptIds: prompt, stop: [], logprobs: null, fitMaxTokens: true, ...endless(t, room) } as JobSpec);
    expect(t.engine.stats().kv.reservedBytes).toBeLessThanOrEqual(2 ** 20);
    for await (const chunk of job) void chunk;
    const result = await job.result;
    expect(result.finishReason).toBe('length');
    expect(result.completionTokens).toBe(Math.floor((2 ** 20 - mask) / perToken) - prompt.length - ON.decodingLength);
  }, 120_000);
});

for (const maxBatch of [1, BATCH]) {
  describe(`the decode loop, ${maxBatch === 1 ? 'one item per forward' : `${maxBatch} items per forward`}`, () => {
    let t: TestEngine;

    beforeAll(async () => {
      t = await startEngine(['--max-running', '4'], { maxBatch, faults: true });
    }, 120_000);
    afterAll(() => t?.close());

    it("a long prompt arriving while another job streams does not stall that stream for the prompt's whole prefill", async () => {
      const info = (t.engine as WorkerEngine).info;
      const streamer = t.engine.submit(t.modelId, { promptIds: [40, 41, 42], stop: [], logprobs: null, ...endless(t, 1500, LOOKAHEAD_OFF) } as JobSpec);
      const arrivals: { at: number; tokens: number }[] = [];
      let longStart = 0;
      let longFirst = 0;
      let longResult: Promise<JobResult> | null = null;
      const longPrompt = Array.from({ length: info.contextLength - 64 }, (_, i) => 40 + ((i * 13) % 150));
      for await (const chunk of streamer) {
        arrivals.push({ at: performance.now(), tokens: chunk.tokens.length });
        if (chunk.tokens.length > 0 && arrivals.length === 5) {
          longStart = performance.now();
          const long = t.engine.submit(t.modelId, { promptIds: longPrompt, stop: [], logprobs: null, ...endless(t, 4, LOOKAHEAD_OFF) } as JobSpec);
          longResult = (async () => {
            for await (const c of long) if (c.tokens.length > 0 && longFirst === 0) longFirst = performance.now();
            return long.result;
          })();
        }
        if (longFirst > 0 && arrivals[arrivals.length - 1].at > longFirst) break;
      }
      const long = await longResult!;
      const prefillMs = longFirst - longStart;
      let worstGap = 0;
      let meanwhile = 0;
      for (let i = 1; i < arrivals.length; i++) {
        if (arrivals[i].at <= longStart) continue;
        worstGap = Math.max(worstGap, arrivals[i].at - arrivals[i - 1].at);
        if (arrivals[i].at < longFirst) meanwhile += arrivals[i].tokens;
      }
      console.log(
        `chunked prefill (${maxBatch} items/forward): ${longPrompt.length}-token prompt took ${prefillMs.toFixed(0)} ms to its first token in ` +
          `${long.lookahead.prefillForwards} forwards; meanwhile the running stream got ${meanwhile} tokens, its worst gap ${worstGap.toFixed(0)} ms`,
      );
      expect(long.lookahead.prefillForwards).toBeGreaterThanOrEqual(Math.ceil(longPrompt.length / 256));
      // Before chunking, the stream stood still for the whole prefill. Now prompt chunks and its steps take turns.
      expect(meanwhile).toBeGreaterThanOrEqual(4);
      expect(worstGap).toBeLessThan(prefillMs * 0.75);
    }, 120_000);

    it('a job whose forward throws fails alone; the jobs batched with it go on, their outputs unchanged', async () => {
      const prompts = [[40, 41, 42], [50, 51], [60, 61, 62, 63], [70]];
      const spec = endless(t, 40, ON);
      const alone: number[][] = [];
      for (const p of prompts) alone.push((await t.run(p, spec)).ids);
      const jobs = prompts.map((p) => t.engine.submit(t.modelId, { promptIds: p, stop: [], logprobs: null, ...spec } as JobSpec));
      const outcomes = await Promise.all(
        jobs.map(async (job, i) => {
          const ids: number[] = [];
          try {
            for await (const chunk of job) {
              if (i === 1 && ids.length === 0) (t.engine as WorkerEngine).injectFault('bad-forward', job);
              ids.push(...chunk.tokens);
            }
            await job.result;
            return { ids, error: null };
          } catch (err) {
            return { ids, error: err as Error };
          }
        }),
      );
      // ORT's own message: the out-of-vocabulary token the fault put into the job's forward.
      expect(outcomes[1].error?.message).toMatch(/out of data bounds/);
      expect(outcomes[1].ids.length).toBeLessThan(alone[1].length);
      for (const i of [0, 2, 3]) {
        expect(outcomes[i].error, `job ${i}`).toBeNull();
        expect(outcomes[i].ids, `job ${i}`).toEqual(alone[i]);
      }
      expect(t.engine.stats()).toMatchObject({ state: 'ready', restarts: 0 });
      // The worker serves on, losslessly.
      expect((await t.run(prompts[1], spec)).ids).toEqual(alone[1]);
    }, 120_000);
  });
}
