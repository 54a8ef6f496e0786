import { z } from 'zod';
import { validateConstraint } from '../../engine/grammar/index.js';
import type { OutputConstraint } from '../../engine/types.js';
import { InvalidRequestError } from '../../errors.js';
import type { ChatMessage } from '../../model/tokenizer/types.js';
import { lookaheadSchema } from '../schemas.js';
import { argumentsOf } from '../tools/request.js';
import type { InputItem } from './response-store.js';

/** `POST /v1/responses` as OpenAI documents it, the fields this server honours, plus our extensions. */
export const responsesRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.looseObject({ type: z.string().optional(), role: z.string().optional() }))]),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stream: z.boolean().nullish(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().min(1).max(200).nullish(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  reasoning: z.looseObject({ effort: z.unknown().optional() }).nullish(),
  text: z.looseObject({ format: z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) }).nullish() }).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(),
  parallel_tool_calls: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  // Extensions (SDKs pass them through `extra_body`), as on chat.
  top_k: z.number().int().min(0).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  lookahead: lookaheadSchema.nullish(),
});

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

/** Fields that need server-side state or features this server does not have: refused by name, never ignored. */
export function rejectUnsupported(body: ResponsesRequest): void {
  for (const field of ['conversation', 'background', 'prompt'] as const) {
    if (body[field] != null && body[field] !== false) throw new InvalidRequestError(`${field} is not supported by this server`, field);
  }
  if (body.top_logprobs) throw new InvalidRequestError('top_logprobs is not supported on /v1/responses by this server; use /v1/chat/completions', 'top_logprobs');
}

/** `text.format` as an engine constraint, checked (a bad schema is a 400 naming `text.format.schema`). */
export function textConstraintOf(body: ResponsesRequest, maxLiteralBytes: number): OutputConstraint | undefined {
  const format = body.text?.format;
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  const { schema, name, strict } = format as { schema?: unknown; name?: unknown; strict?: unknown };
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new InvalidRequestError('text.format of type json_schema needs a schema object', 'text.format.schema');
  }
  if (typeof name !== 'string') throw new InvalidRequestError('text.format of type json_schema needs a name', 'text.format.name');
  const constraint: OutputConstraint = { type: 'json_schema', schema: schema as Record<string, unknown>, name, ...(typeof strict === 'boolean' && { strict }) };
  validateConstraint(constraint, 'text.format.schema', maxLiteralBytes);
  return constraint;
}

/** Items to render: `history` of them came from the previous response, the rest from this request's input. */
export interface Conversation {
  items: InputItem[];
  history: number;
}

/**
 * The conversation the template renders: `instructions` as the system turn, then the input items (earlier
 * responses' items and references already in place): messages, the model's earlier `function_call`s (folded into
 * one assistant turn with tool_calls) and their `function_call_output`s (tool turns). Earlier `reasoning` items are
 * left out, as thinking templates leave earlier thinking out of the prompt.
 */
export function messagesOf(instructions: string | null | undefined, conversation: Conversation): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (instructions) messages.push({ role: 'system', content: instructions });
  conversation.items.forEach((item, i) => {
    // Errors name the request's own items as it numbered them; stored history was checked when it was sent.
    const param = `input[${i - conversation.history}]`;
    const type = item.type ?? 'message';
    if (type === 'message') messages.push(messageOf(item, param));
    else if (type === 'function_call') {
      const call = functionCallOf(item, param);
      const last = messages.at(-1);
      if (last?.role === 'assistant' && last.tool_calls) last.tool_calls.push(call);
      else messages.push({ role: 'assistant', content: '', tool_calls: [call] });
    } else if (type === 'function_call_output') {
      const { call_id, output } = item as { call_id?: unknown; output?: unknown };
      if (typeof call_id !== 'string') throw new InvalidRequestError('a function_call_output needs the call_id of its call', `${param}.call_id`);
      messages.push({ role: 'tool', tool_call_id: call_id, content: typeof output === 'string' ? output : JSON.stringify(output ?? '') });
    } else if (type !== 'reasoning') {
      throw new InvalidRequestError(`input items of type '${type}' are not supported by this server; use message, function_call or function_call_output`, `${param}.type`);
    }
  });
  if (messages.length === 0) throw new InvalidRequestError('input must contain at least one item', 'input');
  return messages;
}

const ROLES = new Set(['user', 'system', 'developer', 'assistant']);

function messageOf(item: InputItem, param: string): ChatMessage {
  const { role, content } = item as { role?: unknown; content?: unknown };
  if (typeof role !== 'string' || !ROLES.has(role)) {
    throw new InvalidRequestError(`unknown role ${JSON.stringify(role)}; expected user, system, developer or assistant`, `${param}.role`);
  }
  if (typeof content === 'string') return { role, content };
  if (!Array.isArray(content)) throw new InvalidRequestError('content must be a string or a list of parts', `${param}.content`);
  const text = content
    .map((part: unknown, j) => {
      const p = part as { type?: unknown; text?: unknown };
      if ((p.type === 'input_text' || p.type === 'output_text' || p.type === 'text') && typeof p.text === 'string') return p.text;
      throw new InvalidRequestError(`content parts of type '${String(p.type)}' are not supported; only input_text and output_text are`, `${param}.content[${j}]`);
    })
    .join('');
  return { role, content: text };
}

function functionCallOf(item: InputItem, param: string): NonNullable<ChatMessage['tool_calls']>[number] {
  const { call_id, name, arguments: args } = item as { call_id?: unknown; name?: unknown; arguments?: unknown };
  if (typeof name !== 'string') throw new InvalidRequestError('a function_call needs a name', `${param}.name`);
  if (typeof args !== 'string') throw new InvalidRequestError('a function_call needs arguments as a JSON string', `${param}.arguments`);
  return { ...(typeof call_id === 'string' && { id: call_id }), type: 'function', function: { name, arguments: argumentsOf(args, `${param}.arguments`) } };
}
