import { randomBytes } from 'node:crypto';
import type { LookaheadBlock, Usage } from '../generation.js';
import type { ParsedCall } from '../tools/parse.js';
import type { ResponsesRequest } from './request.js';

/** Ids in OpenAI's style: a type prefix and random hex. */
export function itemId(prefix: 'resp' | 'msg' | 'fc' | 'rs'): string {
  return `${prefix}_${randomBytes(16).toString('hex')}`;
}

export interface MessageItem {
  type: 'message';
  id: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  role: 'assistant';
  content: { type: 'output_text'; text: string; annotations: never[]; logprobs: never[] }[];
}

export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed';
}

/** A thinking template's think block, as vLLM and gpt-oss servers report it: the text itself, no summary. */
export interface ReasoningItem {
  type: 'reasoning';
  id: string;
  status: 'in_progress' | 'completed';
  summary: never[];
  content: { type: 'reasoning_text'; text: string }[];
}

export type OutputItem = ReasoningItem | MessageItem | FunctionCallItem;

export function reasoningText(text: string): ReasoningItem['content'][number] {
  return { type: 'reasoning_text', text };
}

export function outputText(text: string): MessageItem['content'][number] {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

export function functionCallItem(call: ParsedCall, status: FunctionCallItem['status']): FunctionCallItem {
  return { type: 'function_call', id: itemId('fc'), call_id: call.id, name: call.name, arguments: status === 'completed' ? call.arguments : '', status };
}

/** What a finished response reports of its tokens, in the Responses API's names. */
export function responseUsage(usage: Usage) {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: usage.prompt_tokens_details.cached_tokens },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: usage.completion_tokens_details.reasoning_tokens },
    total_tokens: usage.total_tokens,
  };
}

export interface ResponseHead {
  id: string;
  createdAt: number;
  body: ResponsesRequest;
}

/** The response object, at any stage: in progress (no output yet) or finished with its output, usage and stats. */
export function responseObject(
  head: ResponseHead,
  state: { status: 'in_progress' | 'completed' | 'incomplete'; output: OutputItem[]; usage: Usage | null; lookahead: LookaheadBlock | null },
) {
  const { body } = head;
  return {
    id: head.id,
    object: 'response',
    created_at: head.createdAt,
    status: state.status,
    background: false,
    error: null,
    incomplete_details: state.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: body.model,
    output: state.output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: body.store !== false,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: state.usage ? responseUsage(state.usage) : null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
    ...(state.lookahead && { lookahead: state.lookahead }),
  };
}
