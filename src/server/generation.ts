import type { Config } from '../config/schema.js';
import type { Job, JobResult, JobSpec, LookaheadOptions, SamplingParams, TokenLogprob } from '../engine/types.js';
import { ContextLengthError, InvalidRequestError } from '../errors.js';
import type { ServerDeps } from './deps.js';
import type { LookaheadRequest } from './schemas.js';

/** Everything of a request that becomes JobSpecs, after the route has turned its prompt(s) into ids. */
export interface GenerationPlan extends Pick<JobSpec, 'sampling' | 'stop' | 'logprobs' | 'lookahead' | 'predictionIds' | 'sessionId' | 'constraint' | 'ignoreEos' | 'promptLogprobs'> {
  modelId: string;
  prompts: number[][];
  n: number;
  /** What the client asked for; null = as much as the context allows, capped by limits.maxTokens. */
  maxTokens: number | null;
  /** The param name to blame when max tokens do not fit: chat's and completions' differ. */
  maxTokensParam: string;
  /** Where the prompt sits in the request: `messages` for chat, `prompt` for completions. */
  promptParam: string;
  tenant: string;
}

export interface ChoiceJob {
  /** OpenAI's choice index: prompt-major, then the n samples of that prompt. */
  index: number;
  promptIndex: number;
  job: Job;
}

export interface ChoiceOutput {
  index: number;
  promptIndex: number;
  text: string;
  tokens: number[];
  logprobs: TokenLogprob[];
  result: JobResult;
}

interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  repetition_penalty?: number | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  n?: number | null;
  stop?: string | string[] | null;
  lookahead?: LookaheadRequest | null;
}

/**
 * OpenAI's default temperature is 1; we keep that so SDK defaults mean the same thing here, and temperature 0
 * selects the greedy (bit-exact lossless) path.
 */
export function samplingOf(body: SamplingFields): SamplingParams {
  const logitBias: Record<number, number> = {};
  for (const [key, value] of Object.entries(body.logit_bias ?? {})) {
    if (!/^\d+$/.test(key)) throw new InvalidRequestError(`logit_bias keys must be token ids; got ${JSON.stringify(key)}`, 'logit_bias');
    if (!(value >= -100 && value <= 100)) throw new InvalidRequestError(`logit_bias values must lie in [-100, 100]; got ${value} for token ${key}`, 'logit_bias');
    logitBias[Number(key)] = value;
  }
  return {
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    topK: body.top_k ?? 0,
    repetitionPenalty: body.repetition_penalty ?? 1,
    seed: body.seed ?? null,
    ...(body.presence_penalty && { presencePenalty: body.presence_penalty }),
    ...(body.frequency_penalty && { frequencyPenalty: body.frequency_penalty }),
    ...(Object.keys(logitBias).length > 0 && { logitBias }),
  };
}

export function stopOf(stop: SamplingFields['stop']): string[] {
  if (stop === null || stop === undefined) return [];
  return (typeof stop === 'string' ? [stop] : stop).filter((s) => s.length > 0);
}

export function nOf(n: number | null | undefined, config: Config): number {
  const value = n ?? 1;
  if (value > config.limits.maxN) throw new InvalidRequestError(`n must be at most ${config.limits.maxN} on this server`, 'n');
  return value;
}

export function lookaheadOf(requested: SamplingFields['lookahead'], defaults: LookaheadOptions): LookaheadOptions {
  return {
    enabled: requested?.enabled ?? defaults.enabled,
    decodingLength: requested?.decoding_length ?? defaults.decodingLength,
    branchLength: requested?.branch_length ?? defaults.branchLength,
    layout: requested?.layout ?? defaults.layout,
  };
}

/**
 * Submits all n × prompts jobs, or none: limits are checked for every prompt before the first job is queued,
 * and jobs already queued are aborted if a later submit fails (queue full). Each job holds one of its tenant's
 * job slots until it ends.
 */
export function submitJobs(deps: ServerDeps, plan: GenerationPlan, signal: AbortSignal): ChoiceJob[] {
  const { engine, config } = deps;
  const model = engine.models.find((m) => m.id === plan.modelId);
  const contextLength = model?.contextLength ?? Number.POSITIVE_INFINITY;
  if (plan.maxTokens !== null && plan.maxTokens > config.limits.maxTokens) {
    throw new InvalidRequestError(`${plan.maxTokensParam} must be at most ${config.limits.maxTokens} on this server`, plan.maxTokensParam);
  }
  const budgets = plan.prompts.map((ids) => {
    if (ids.length === 0) {
      // With a BOS token an empty prompt still encodes to [BOS]; without one nothing conditions the completion.
      throw new InvalidRequestError(
        `The ${plan.promptParam} is empty and this model's tokenizer has no BOS token to start from: there is nothing to condition the completion on.`,
        plan.promptParam,
      );
    }
    const room = contextLength - ids.length;
    if (plan.maxTokens === null && room < 1) {
      // Nothing was asked for, so there is no completion size to quote: the prompt alone is too long.
      throw new ContextLengthError(
        `This model's maximum context length is ${contextLength} tokens. However, your ${plan.promptParam} resulted in ` +
          `${ids.length} tokens, which leaves no room for the completion. Please reduce the length of the ${plan.promptParam}.`,
        plan.promptParam,
      );
    }
    const maxTokens = plan.maxTokens ?? Math.min(config.limits.maxTokens, room);
    if (maxTokens > room) {
      throw new ContextLengthError(
        `This model's maximum context length is ${contextLength} tokens. However, you requested ` +
          `${ids.length + maxTokens} tokens (${ids.length} in the prompt, ${maxTokens} for the completion). ` +
          `Please reduce the length of the ${plan.promptParam} or ${plan.maxTokensParam}.`,
        plan.promptParam,
      );
    }
    return maxTokens;
  });

  const count = plan.prompts.length * plan.n;
  // A request that could never fit is the client's error, not a reason to retry (which SDKs would do forever).
  const fits = Math.min(config.limits.maxJobsPerTenant, config.queue.maxRunning + config.queue.maxQueued);
  if (count > fits) {
    throw new InvalidRequestError(
      `This request needs ${count} jobs (${plan.prompts.length} prompts × n=${plan.n}); this server runs at most ${fits} at once for one caller. Lower n or send fewer prompts.`,
      plan.n > 1 ? 'n' : plan.promptParam,
      'too_many_choices',
    );
  }
  const release = deps.tenantJobs.reserve(plan.tenant, count);
  const choices: ChoiceJob[] = [];
  try {
    plan.prompts.forEach((promptIds, promptIndex) => {
      // The n choices of a prompt draft from one request trie.
      let first: Job | undefined;
      for (let i = 0; i < plan.n; i++) {
        const seed = plan.sampling.seed === null ? null : plan.sampling.seed + i;
        const spec: JobSpec = {
          promptIds,
          maxTokens: budgets[promptIndex],
          fitMaxTokens: plan.maxTokens === null,
          sampling: { ...plan.sampling, seed },
          stop: plan.stop,
          logprobs: plan.logprobs,
          lookahead: plan.lookahead,
          ...(plan.predictionIds && { predictionIds: plan.predictionIds }),
          ...(plan.ignoreEos && { ignoreEos: true }),
          ...(plan.promptLogprobs && { promptLogprobs: true }),
          ...(plan.constraint && { constraint: plan.constraint }),
          ...(plan.sessionId && { sessionId: plan.sessionId }),
          ...(first && { sharesDraftsWith: first }),
          tenant: plan.tenant,
          signal,
        };
        const job = engine.submit(plan.modelId, spec);
        first ??= job;
        void job.result.then(release, release);
        choices.push({ index: choices.length, promptIndex, job });
      }
    });
  } catch (err) {
    for (let i = choices.length; i < plan.prompts.length * plan.n; i++) release();
    throw err;
  }
  return choices;
}

export async function collect(choice: ChoiceJob): Promise<ChoiceOutput> {
  let text = '';
  const tokens: number[] = [];
  const logprobs: TokenLogprob[] = [];
  for await (const chunk of choice.job) {
    text += chunk.text;
    for (const t of chunk.tokens) tokens.push(t);
    if (chunk.logprobs) for (const lp of chunk.logprobs) logprobs.push(lp);
  }
  return { index: choice.index, promptIndex: choice.promptIndex, text, tokens, logprobs, result: await choice.job.result };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number; accepted_prediction_tokens: number; rejected_prediction_tokens: number };
}

export interface LookaheadBlock {
  steps: number;
  draft_tokens: number;
  accepted_tokens: number;
  tokens_per_step: number;
  draft_seconds: number;
  /** accepted_by_position[d] = steps that accepted a draft token at depth d + 1. */
  accepted_by_position: number[];
  /** draft_sizes[k] = decode steps whose forward the adaptive budget gave k tokens (root included). */
  draft_sizes: Record<string, number>;
  /** Time in the model's forwards for decode steps, and wall time from the first decode step to the end: what a client's TPOT is made of, measured where it happens. */
  forward_seconds: number;
  decode_seconds: number;
}

/** What a finished choice contributes to usage: its result and the tokens it generated. */
export interface FinishedChoice {
  promptIndex: number;
  tokens: readonly number[];
  result: JobResult;
  /** Of its tokens, those that were thinking (a thinking template's think block). */
  reasoningTokens?: number;
}

/**
 * Usage and the lookahead block. `accepted_prediction_tokens` / `rejected_prediction_tokens` count the draft tokens
 * copied from the client's `prediction` that verification kept or threw away, as OpenAI's fields mean (0 without a
 * prediction); the lookahead block counts every draft token, whatever its source.
 */
export function usageOf(choices: readonly FinishedChoice[]): { usage: Usage; lookahead: LookaheadBlock } {
  const promptTokens = new Map<number, number>();
  /** Per prompt, the most of its tokens one of its choices took from the prefix cache. */
  const cachedTokens = new Map<number, number>();
  let completion = 0;
  let reasoning = 0;
  const block: LookaheadBlock = { steps: 0, draft_tokens: 0, accepted_tokens: 0, tokens_per_step: 0, draft_seconds: 0, accepted_by_position: [], draft_sizes: {}, forward_seconds: 0, decode_seconds: 0 };
  let stepTokens = 0;
  let predictionDrafted = 0;
  let predictionAccepted = 0;
  for (const c of choices) {
    promptTokens.set(c.promptIndex, c.result.promptTokens);
    cachedTokens.set(c.promptIndex, Math.max(cachedTokens.get(c.promptIndex) ?? 0, c.result.lookahead.cachedTokens));
    completion += c.result.completionTokens;
    reasoning += c.reasoningTokens ?? 0;
    const la = c.result.lookahead;
    block.steps += la.steps;
    block.draft_tokens += la.draftTokens;
    block.accepted_tokens += la.acceptedTokens;
    predictionDrafted += la.predictionDraftTokens;
    predictionAccepted += la.predictionAcceptedTokens;
    block.draft_seconds += la.draftSeconds;
    block.forward_seconds += la.forwardSeconds;
    block.decode_seconds += la.decodeSeconds;
    for (const [size, n] of Object.entries(la.budgets)) block.draft_sizes[size] = (block.draft_sizes[size] ?? 0) + n;
    stepTokens += la.tokensPerStep * la.steps;
    la.acceptedByPosition.forEach((n, d) => (block.accepted_by_position[d] = (block.accepted_by_position[d] ?? 0) + n));
  }
  block.tokens_per_step = block.steps > 0 ? stepTokens / block.steps : 0;
  const prompt = [...promptTokens.values()].reduce((a, b) => a + b, 0);
  return {
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      prompt_tokens_details: { cached_tokens: [...cachedTokens.values()].reduce((a, b) => a + b, 0) },
      completion_tokens_details: {
        reasoning_tokens: reasoning,
        accepted_prediction_tokens: predictionAccepted,
        rejected_prediction_tokens: predictionDrafted - predictionAccepted,
      },
    },
    lookahead: block,
  };
}

