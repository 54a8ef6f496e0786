import { emptySample, streamChat, type Target } from './client.js';
import { BenchError } from './errors.js';
import type { RequestSample } from './metrics.js';
import type { ChatMessage, WorkloadItem } from './workload.js';
import { Rng } from '../src/engine/rng.js';

/** Absolute ceilings, whatever the flags say: a harness must always stop on its own. */
export const MAX_REQUESTS = 100_000;
export const MAX_DURATION_S = 3600;
const MAX_IN_FLIGHT_OPEN_LOOP = 1024;

export type Arrival = { kind: 'concurrency'; concurrency: number } | { kind: 'rate'; requestsPerSecond: number; seed: number };

export interface LoadPlan {
  target: Target;
  model: string;
  items: readonly WorkloadItem[];
  arrival: Arrival;
  /** Stop after this many requests (follow-up turns count) … */
  requests: number | null;
  /** … or after this many seconds of sending, whichever comes first. In-flight requests then finish. */
  durationS: number | null;
  maxTokens: number;
  /** Extra body fields for every request (e.g. the `lookahead` block). */
  extraBody: Record<string, unknown>;
  /** Offset into the workload, so interleaved rounds send different requests. */
  firstItem?: number;
  /** Abandon the run when this many requests in a row failed from the start (default 5). */
  failFast?: number;
  onSample?: (sample: RequestSample) => void;
  signal?: AbortSignal;
}

export interface LoadResult {
  samples: RequestSample[];
  durationS: number;
}

/** Drives one run: closed loop at fixed concurrency or open loop with Poisson arrivals. */
export async function runLoad(plan: LoadPlan): Promise<LoadResult> {
  const limit = Math.min(plan.requests ?? MAX_REQUESTS, MAX_REQUESTS);
  const durationS = Math.min(plan.durationS ?? MAX_DURATION_S, MAX_DURATION_S);
  if (plan.requests === null && plan.durationS === null) throw new BenchError('give --requests or --duration');
  if (limit < 1) throw new BenchError('--requests must be at least 1');
  if (plan.items.length === 0) throw new BenchError('the workload is empty');

  const stop = new AbortController();
  const signal = plan.signal ? AbortSignal.any([plan.signal, stop.signal]) : stop.signal;
  const samples: RequestSample[] = [];
  const failFast = plan.failFast ?? 5;
  let fatal: string | null = null;
  let claimed = 0;
  const start = performance.now();
  const deadline = start + durationS * 1000;
  const mayStart = (): boolean => !signal.aborted && claimed < limit && performance.now() < deadline;

  const record = (s: RequestSample): void => {
    samples.push(s);
    plan.onSample?.(s);
    if (fatal === null && samples.length <= failFast && samples.every((x) => !x.ok) && (samples.length === failFast || samples.length === limit)) {
      fatal = `the first ${samples.length} requests all failed; last: ${s.errorType}: ${s.errorMessage}`;
      stop.abort();
    }
  };

  /** One item: its first request, then its follow-up turns with the answers so far, in one session. */
  const runItem = async (index: number): Promise<void> => {
    const item = plan.items[index % plan.items.length];
    const turns = [null, ...(item.followUps ?? [])];
    const messages: ChatMessage[] = [...item.messages];
    const headers: Record<string, string> = item.followUps?.length ? { 'x-session-id': `bench-${index}` } : {};
    for (let t = 0; t < turns.length; t++) {
      if (t > 0) {
        if (!mayStart()) return;
        claimed++;
        messages.push({ role: 'user', content: turns[t]! });
      }
      const sample = await streamChat(plan.target, requestBody(plan, item, messages, t === 0), headers, signal);
      sample.key = `${item.id}#${t}`;
      record(sample);
      if (!sample.ok) return;
      messages.push({ role: 'assistant', content: sample.text });
    }
  };

  const first = plan.firstItem ?? 0;
  if (plan.arrival.kind === 'concurrency') {
    const worker = async (): Promise<void> => {
      while (mayStart()) {
        const index = first + claimed++;
        await runItem(index);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, plan.arrival.concurrency) }, worker));
  } else {
    // Seeded, so an open-loop schedule is reproducible.
    const rng = new Rng(plan.arrival.seed);
    const rate = plan.arrival.requestsPerSecond;
    if (!(rate > 0)) throw new BenchError('--rate must be a positive number of requests per second');
    const inFlight = new Set<Promise<void>>();
    let next = start;
    while (mayStart()) {
      // Exponential gaps give a Poisson arrival process: the open-loop load real users make.
      next += (-Math.log(1 - rng.nextFloat()) / rate) * 1000;
      const wait = next - performance.now();
      if (wait > 0) await sleep(Math.min(wait, deadline - performance.now()), signal);
      if (!mayStart()) break;
      const index = first + claimed++;
      if (inFlight.size >= MAX_IN_FLIGHT_OPEN_LOOP) {
        record(overloaded());
        continue;
      }
      const p: Promise<void> = runItem(index).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  }
  if (fatal) throw new BenchError(fatal);
  return { samples, durationS: (performance.now() - start) / 1000 };
}

function requestBody(plan: LoadPlan, item: WorkloadItem, messages: ChatMessage[], firstTurn: boolean): Record<string, unknown> {
  return {
    model: plan.model,
    messages,
    max_tokens: plan.maxTokens,
    temperature: 0,
    ...(firstTurn && item.prediction !== undefined ? { prediction: { type: 'content', content: item.prediction } } : {}),
    ...plan.extraBody,
  };
}

function overloaded(): RequestSample {
  return emptySample('client_overload', `more than ${MAX_IN_FLIGHT_OPEN_LOOP} requests in flight; the server cannot keep up with the rate`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

