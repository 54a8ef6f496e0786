import { validateConstraint } from '../../engine/grammar/index.js';
import { InvalidRequestError, UnsupportedSchemaError } from '../../errors.js';
import type { ChatTool } from '../../model/tokenizer/types.js';

/** What the model may do with the tools: OpenAI's tool_choice, a named function reduced to its name. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** The tools of a request, validated and in one shape for chat and the Responses API. */
export interface ToolSetup {
  tools: ChatTool[];
  choice: ToolChoice;
  /** `parallel_tool_calls` (default true): false allows one call per answer. */
  parallel: boolean;
}

/** The two places a function's fields sit: chat nests them under `function`, the Responses API does not. */
type Layout = 'chat' | 'responses';

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates `tools` and `tool_choice` and returns the setup, or null when the request has no tools. Every refusal
 * names the offending field.
 */
export function toolSetupOf(
  body: { tools?: unknown; tool_choice?: unknown; functions?: unknown; function_call?: unknown; parallel_tool_calls?: unknown },
  layout: Layout,
  /** See validateConstraint. */
  maxLiteralBytes: number,
): ToolSetup | null {
  // The deprecated form would need answers in its own shape (message.function_call); refused, not half-served.
  for (const field of ['functions', 'function_call'] as const) {
    if (body[field] != null) throw new InvalidRequestError(`${field} is deprecated and not supported by this server; use tools and tool_choice`, field);
  }
  if (body.parallel_tool_calls != null && typeof body.parallel_tool_calls !== 'boolean') {
    throw new InvalidRequestError('parallel_tool_calls must be a boolean', 'parallel_tool_calls');
  }
  const setup = parse(body.tools, body.tool_choice, layout, maxLiteralBytes);
  return setup && { ...setup, parallel: body.parallel_tool_calls !== false };
}

function parse(rawTools: unknown, rawChoice: unknown, layout: Layout, maxLiteralBytes: number): Omit<ToolSetup, 'parallel'> | null {
  const hasTools = Array.isArray(rawTools) && rawTools.length > 0;
  if (rawTools != null && !Array.isArray(rawTools)) throw new InvalidRequestError('tools must be an array', 'tools');
  if (!hasTools) {
    if (rawChoice != null && rawChoice !== 'none') throw new InvalidRequestError('tool_choice is only allowed when tools are specified', 'tool_choice');
    return null;
  }
  const choice = choiceOf(rawChoice, 'tool_choice', layout);
  const tools = (rawTools as unknown[]).map((t, i) => toolOf(t, `tools[${i}]`, layout, choice, maxLiteralBytes));
  const names = new Set<string>();
  tools.forEach((t, i) => {
    if (names.has(t.function.name)) throw new InvalidRequestError(`duplicate function name '${t.function.name}'`, `tools[${i}]`);
    names.add(t.function.name);
  });
  if (typeof choice === 'object' && !names.has(choice.name)) {
    throw new InvalidRequestError(`tool_choice names function '${choice.name}', which is not among the tools`, 'tool_choice');
  }
  return { tools, choice };
}

function choiceOf(raw: unknown, param: string, layout: Layout): ToolChoice {
  if (raw == null) return 'auto';
  if (raw === 'auto' || raw === 'none' || raw === 'required') return raw;
  if (isObject(raw) && raw.type === 'function') {
    const name = layout === 'chat' && isObject(raw.function) ? raw.function.name : raw.name;
    if (typeof name === 'string' && name.length > 0) return { name };
  }
  throw new InvalidRequestError(
    `${param} must be "auto", "none", "required" or ${layout === 'chat' ? '{"type": "function", "function": {"name": ...}}' : '{"type": "function", "name": ...}'}`,
    param,
  );
}

function toolOf(raw: unknown, param: string, layout: Layout, choice: ToolChoice, maxLiteralBytes: number): ChatTool {
  if (!isObject(raw)) throw new InvalidRequestError('a tool must be an object', param);
  if (raw.type !== 'function') {
    throw new InvalidRequestError(`tools of type ${JSON.stringify(raw.type)} are not supported by this server; only "function" tools are`, `${param}.type`);
  }
  const fn = layout === 'chat' ? raw.function : raw;
  const at = layout === 'chat' ? `${param}.function` : param;
  if (!isObject(fn)) throw new InvalidRequestError('a function tool needs a function object', at);
  const { name, description, parameters } = fn;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidRequestError('a function name must be 1-64 characters of a-z, A-Z, 0-9, _ or -', `${at}.name`);
  }
  if (description != null && typeof description !== 'string') throw new InvalidRequestError('description must be a string', `${at}.description`);
  const schema = parameters ?? { type: 'object', properties: {} };
  if (!isObject(schema)) throw new InvalidRequestError('parameters must be a JSON schema object', `${at}.parameters`);
  try {
    validateConstraint({ type: 'json_schema', schema }, `${at}.parameters`, maxLiteralBytes);
  } catch (err) {
    // A feature the grammar cannot enforce only matters when the call is constrained (required or named).
    const constrained = choice === 'required' || (typeof choice === 'object' && choice.name === name);
    if (!(err instanceof UnsupportedSchemaError) || constrained) throw err;
  }
  return { type: 'function', function: { name, ...(typeof description === 'string' && { description }), parameters: schema } };
}

/** Templates render arguments as JSON objects (`| tojson`), so the string the API carries is parsed first. */
export function argumentsOf(text: string, param: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidRequestError('tool call arguments must be a JSON string', param);
  }
}
