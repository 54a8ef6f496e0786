import { z } from 'zod';
import { lookaheadSettings } from '../config/schema.js';

/**
 * Request bodies as OpenAI documents them, plus our extensions. Objects are loose: fields we do not know are
 * ignored, so stock SDKs (which send extras) keep working. Fields we know but cannot honour are rejected
 * explicitly in the routes rather than silently dropped.
 */
const textPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const content = z.union([z.string(), z.array(textPart)]);

const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool'], {
    error: (issue) => `unknown role ${JSON.stringify(issue.input)}; expected system, developer, user, assistant or tool`,
  }),
  // Assistant turns that only carried tool calls have null content.
  content: content.nullable().optional(),
  name: z.string().optional(),
  tool_calls: z
    .array(z.looseObject({ id: z.string().optional(), type: z.literal('function').optional(), function: z.looseObject({ name: z.string(), arguments: z.string() }) }))
    .nullish(),
  tool_call_id: z.string().nullish(),
});

// A refinement rather than `.max` inside a union: a union that fails reports "Invalid input", not the reason.
const stop = z
  .union([z.string(), z.array(z.string().min(1))])
  .refine((s) => typeof s === 'string' || s.length <= 4, 'at most 4 stop sequences are allowed')
  .nullish();

const { enabled, decodingLength, branchLength, layout } = lookaheadSettings.shape;

/** A request's overrides of the server's lookahead settings: the config's fields and bounds, in snake_case. */
export const lookaheadSchema = z.looseObject({
  enabled: enabled.optional(),
  decoding_length: decodingLength.optional(),
  branch_length: branchLength.optional(),
  layout: layout.optional(),
});
export type LookaheadRequest = z.infer<typeof lookaheadSchema>;

/** Checked further (and turned into the engine's constraint) by server/response-format.ts. */
const responseFormat = z.looseObject({ type: z.string() }).nullish();

/** Fields shared by chat and legacy completions. */
const common = {
  model: z.string().min(1),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  n: z.number().int().min(1).nullish(),
  seed: z.number().int().nullish(),
  stop,
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  user: z.string().nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  // Extensions (SDKs pass them through `extra_body`).
  top_k: z.number().int().min(0).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  ignore_eos: z.boolean().nullish(),
  lookahead: lookaheadSchema.nullish(),
};

export const chatRequestSchema = z.looseObject({
  ...common,
  messages: z.array(message).min(1, 'messages must contain at least one message'),
  max_completion_tokens: z.number().int().min(1).nullish(),
  // vLLM's extension: extra chat template variables, e.g. Qwen3's {"enable_thinking": false}.
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  // Checked by effortOf, so an unknown effort is a 400 that lists the known ones.
  reasoning_effort: z.unknown().optional(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  prompt_cache_key: z.string().nullish(),
  prediction: z.looseObject({ type: z.literal('content'), content }).nullish(),
  response_format: responseFormat,
  tools: z.array(z.unknown()).nullish(),
});

export const completionRequestSchema = z.looseObject({
  ...common,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(z.number().int().min(0)).min(1),
    z.array(z.array(z.number().int().min(0)).min(1)).min(1),
  ]),
  // 0 only with echo: scoring a prompt (lm-eval's loglikelihood requests) generates nothing.
  max_tokens: z.number().int().min(0).nullish(),
  logprobs: z.number().int().min(0).max(20).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  best_of: z.number().int().min(1).nullish(),
  // An extension here (vLLM has it too): structured output for raw prompts.
  response_format: responseFormat,
});

export const documentsRequestSchema = z.looseObject({
  documents: z.array(z.union([z.string(), z.looseObject({ text: z.string() })])).min(1),
  tenant: z.string().min(1).optional(),
});

/** vLLM's /tokenize of a prompt, encoded as completions encodes it. The model may be left out. */
export const tokenizePromptSchema = z.looseObject({
  model: z.string().min(1).nullish(),
  prompt: z.string({ error: 'prompt must be a string (or send messages instead)' }),
  add_special_tokens: z.boolean().nullish(),
});

/** vLLM's /tokenize of messages, rendered as chat renders them. */
export const tokenizeChatSchema = z.looseObject({
  model: z.string().min(1).nullish(),
  messages: z.array(message).min(1, 'messages must contain at least one message'),
  add_special_tokens: z.boolean().nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  tools: z.array(z.unknown()).nullish(),
});

export const detokenizeRequestSchema = z.looseObject({
  model: z.string().min(1).nullish(),
  tokens: z.array(z.number().int().min(0)),
});

/** OpenAI caps an embeddings request at 2048 inputs. */
export const MAX_EMBEDDING_INPUTS = 2048;

export const embeddingRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([
    z.string(),
    z.array(z.string()).min(1).max(MAX_EMBEDDING_INPUTS),
    z.array(z.number().int().min(0)).min(1),
    z.array(z.array(z.number().int().min(0)).min(1)).min(1).max(MAX_EMBEDDING_INPUTS),
  ]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().nullish(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type CompletionRequest = z.infer<typeof completionRequestSchema>;
export type ContentField = z.infer<typeof content>;
