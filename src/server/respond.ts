import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import type { TokenLogprob } from '../engine/types.js';
import { AbortedError } from '../errors.js';
import type { AppEnv, GenerationRecord, ServerDeps } from './deps.js';
import { mapError } from './errors.js';
import { collect, submitJobs, usageOf, type ChoiceJob, type ChoiceOutput, type FinishedChoice, type GenerationPlan } from './generation.js';
import { RequestAbort } from './request.js';
import { SseStream } from './sse.js';

const SYSTEM_FINGERPRINT = 'fp_lookahead_proxy';

/** How one endpoint (chat or legacy completions) shapes its choices; the streaming/collecting logic is shared. */
export interface ResponseShape<State> {
  idPrefix: string;
  object: string;
  chunkObject: string;
  newState(): State;
  /** The choice sent before any text when streaming (chat's role delta, an echoed prompt), or null. */
  opening(index: number, promptIndex: number): object | null;
  /** The chunk for newly generated text, or null when nothing can be shown yet (held back, e.g. a tool call). */
  delta(index: number, text: string, logprobs: TokenLogprob[] | undefined, state: State): object | null;
  /** Chunks for output held back until the end (tool calls), sent before the closing one. */
  flush?(index: number, state: State): object[];
  closing(index: number, finishReason: string, state: State): object;
  choice(output: ChoiceOutput, state: State): object;
  /** Of a finished choice's tokens, how many were thinking (once its text went through the state). */
  reasoningTokens?(tokens: readonly number[], state: State): number;
}

export interface RespondOptions {
  choices: ChoiceJob[];
  abort: RequestAbort;
  model: string;
  stream: boolean;
  includeUsage: boolean;
}

/**
 * Submits a request's jobs and answers with them. Jobs queued before a later submit was refused (queue full,
 * tenant limit) are aborted, so they never run for nobody.
 */
export async function generate<S>(
  c: Context<AppEnv>,
  deps: ServerDeps,
  shape: ResponseShape<S>,
  plan: GenerationPlan,
  body: { model: string; stream?: boolean | null; stream_options?: { include_usage?: boolean | null } | null },
): Promise<Response> {
  const { choices, abort } = await startJobs(c, deps, plan);
  const stream = body.stream === true;
  return respond(c, deps, shape, { choices, abort, model: body.model, stream, includeUsage: stream && body.stream_options?.include_usage === true });
}

/**
 * Submits the plan's jobs under one request abort (client gone, timeout); the caller disposes of the abort. A
 * session new to this replica first gets its earlier turns from the other replicas (bounded wait).
 */
export async function startJobs(c: Context<AppEnv>, deps: ServerDeps, plan: GenerationPlan): Promise<{ choices: ChoiceJob[]; abort: RequestAbort }> {
  if (plan.sessionId && deps.replication) await deps.replication.prepareSession(plan.tenant, plan.sessionId);
  const abort = new RequestAbort(c.req.raw.signal, deps.config.server.requestTimeoutMs);
  try {
    return { choices: submitJobs(deps, plan, abort.signal), abort };
  } catch (err) {
    abort.abort(err as Error);
    abort.dispose();
    throw err;
  }
}

export function newCompletionId(prefix: string): string {
  return prefix + randomBytes(12).toString('hex');
}

export async function respond<S>(c: Context<AppEnv>, deps: ServerDeps, shape: ResponseShape<S>, opts: RespondOptions): Promise<Response> {
  const id = newCompletionId(shape.idPrefix);
  const created = Math.floor(Date.now() / 1000);
  const base = { id, created, model: opts.model, system_fingerprint: SYSTEM_FINGERPRINT };
  if (opts.stream) return streamed(c, deps, shape, opts, base);

  let outputs: ChoiceOutput[];
  try {
    outputs = await Promise.all(opts.choices.map(collect));
  } catch (err) {
    opts.abort.abort(err as Error);
    // The abort's reason (timeout, client gone) says more than the job's generic cancellation.
    throw opts.abort.reason ?? err;
  } finally {
    opts.abort.dispose();
  }
  const states = outputs.map(() => shape.newState());
  const choices = outputs.map((o, i) => shape.choice(o, states[i]));
  const finished = outputs.map((o, i) => ({ ...o, reasoningTokens: shape.reasoningTokens?.(o.tokens, states[i]) ?? 0 }));
  const { usage, lookahead } = usageOf(finished);
  record(c, deps, opts, outputs, usage.prompt_tokens, lookahead.tokens_per_step);
  return c.json({
    ...base,
    object: shape.object,
    choices,
    usage,
    lookahead,
    service_tier: 'default',
  });
}

function streamed<S>(c: Context<AppEnv>, deps: ServerDeps, shape: ResponseShape<S>, opts: RespondOptions, base: object): Response {
  const requestId = c.get('requestId');
  const sse = new SseStream(() => opts.abort.abort(new AbortedError('the client closed the stream')), { 'x-request-id': requestId });
  const head = { ...base, object: shape.chunkObject };
  // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
  const chunk = (choice: object) => (opts.includeUsage ? { ...head, choices: [choice], usage: null } : { ...head, choices: [choice] });

  const pump = async (choice: ChoiceJob): Promise<FinishedChoice> => {
    const state = shape.newState();
    const opening = shape.opening(choice.index, choice.promptIndex);
    if (opening) sse.send(chunk(opening));
    const tokens: number[] = [];
    for await (const part of choice.job) {
      // A client that does not read holds up its own stream, not the server's memory.
      await sse.ready(opts.abort.signal);
      for (const t of part.tokens) tokens.push(t);
      if (part.text || part.logprobs?.length) {
        const delta = shape.delta(choice.index, part.text, part.logprobs, state);
        if (delta) sse.send(chunk(delta));
      }
    }
    const result = await choice.job.result;
    for (const held of shape.flush?.(choice.index, state) ?? []) sse.send(chunk(held));
    sse.send(chunk(shape.closing(choice.index, result.finishReason, state)));
    return { promptIndex: choice.promptIndex, tokens, result, reasoningTokens: shape.reasoningTokens?.(tokens, state) ?? 0 };
  };

  let ended!: () => void;
  c.set('streamDone', new Promise<void>((resolve) => (ended = resolve)));
  void (async () => {
    try {
      const finished = await Promise.all(opts.choices.map(pump));
      const { usage, lookahead } = usageOf(finished);
      record(c, deps, opts, finished, usage.prompt_tokens, lookahead.tokens_per_step);
      if (opts.includeUsage) sse.send({ ...head, choices: [], usage, lookahead });
      sse.done();
    } catch (err) {
      opts.abort.abort(err as Error);
      if (sse.closed) return; // the client left; nobody to tell
      const mapped = mapError(opts.abort.reason ?? err, requestId);
      if (mapped.internal) deps.log.error({ err, requestId }, 'generation failed mid-stream');
      // The SDKs turn a data line carrying `error` into an APIError.
      sse.send(mapped.body);
      sse.close();
    } finally {
      opts.abort.dispose();
      ended();
    }
  })();
  return sse.response;
}

/** Feeds /metrics with each finished job and leaves the numbers for the request's log line. */
export function record(c: Context<AppEnv>, deps: ServerDeps, opts: Pick<RespondOptions, 'model' | 'stream'>, finished: readonly FinishedChoice[], promptTokens: number, tokensPerStep: number): void {
  let completionTokens = 0;
  for (const f of finished) {
    const r = f.result;
    completionTokens += r.completionTokens;
    deps.metrics.observeJob({
      model: opts.model,
      promptTokens: r.promptTokens,
      cachedTokens: r.lookahead.cachedTokens,
      completionTokens: r.completionTokens,
      steps: r.lookahead.steps,
      draftTokens: r.lookahead.draftTokens,
      acceptedTokens: r.lookahead.acceptedTokens,
      acceptedByPosition: r.lookahead.acceptedByPosition,
    });
  }
  const generation: GenerationRecord = { model: opts.model, promptTokens, completionTokens, tokensPerStep, stream: opts.stream };
  c.set('generation', generation);
}
