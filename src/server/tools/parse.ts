import { randomBytes } from 'node:crypto';
import type { ToolChoice } from './request.js';

/** A call the model made: `arguments` is JSON text, as OpenAI returns it. */
export interface ParsedCall {
  id: string;
  name: string;
  arguments: string;
}

/** What a piece of output turned into: text to show and the calls completed within it. */
export interface ToolOutput {
  content: string;
  calls: ParsedCall[];
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
/** Llama 3.1 starts its JSON calls with this tag when it is in the vocabulary and not skipped. */
const PYTHON_TAG = '<|python_tag|>';

export function newCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/**
 * Splits model output into text and tool calls as it arrives, in the formats chat templates teach: Hermes/Qwen
 * `<tool_call>{"name": .., "arguments": ..}</tool_call>` blocks anywhere in the text, or a Llama 3 answer that is
 * nothing but JSON `{"name": .., "parameters": ..}` (or a list of those). Text that might still become a call is
 * held back until it is decided, so a client never sees the markup. Calls naming functions that were not offered
 * stay text.
 */
export class ToolCallStream {
  private buffer = '';
  private inCall = false;
  /** True until something other than whitespace went out as text: only then may the answer be bare JSON. */
  private atStart = true;
  private pendingSpace = '';

  constructor(private readonly names: ReadonlySet<string>) {}

  push(text: string): ToolOutput {
    this.buffer += text;
    const out: ToolOutput = { content: '', calls: [] };
    for (;;) {
      if (this.inCall) {
        const end = this.buffer.indexOf(CLOSE);
        if (end < 0) return out;
        this.finishCall(this.buffer.slice(0, end), out);
        this.buffer = this.buffer.slice(end + CLOSE.length);
        this.inCall = false;
        continue;
      }
      const start = this.buffer.indexOf(OPEN);
      if (start >= 0) {
        this.emit(this.buffer.slice(0, start), out);
        this.buffer = this.buffer.slice(start + OPEN.length);
        this.inCall = true;
        this.atStart = false;
        continue;
      }
      const lead = this.buffer.trimStart();
      // Bare JSON (Llama 3) is only decided at the end of the answer.
      if (this.atStart && (lead.startsWith('{') || lead.startsWith('[') || lead.startsWith(PYTHON_TAG) || PYTHON_TAG.startsWith(lead))) return out;
      const keep = partialTagLength(this.buffer);
      this.emit(this.buffer.slice(0, this.buffer.length - keep), out);
      this.buffer = this.buffer.slice(this.buffer.length - keep);
      return out;
    }
  }

  /** The output has ended: whatever is held back is decided now. */
  end(): ToolOutput {
    const out: ToolOutput = { content: '', calls: [] };
    if (this.inCall) {
      // An answer cut off (or ended) before the closing tag: the call stands if its JSON is complete.
      this.finishCall(this.buffer, out);
    } else if (this.atStart) {
      const calls = bareJsonCalls(this.buffer, this.names);
      if (calls) out.calls.push(...calls);
      else this.emit(this.buffer, out);
    } else {
      this.emit(this.buffer, out);
    }
    this.buffer = '';
    this.inCall = false;
    return out;
  }

  private finishCall(body: string, out: ToolOutput): void {
    const call = callOf(parseJson(body.trim()), this.names);
    if (call) out.calls.push(call);
    else this.emit(`${OPEN}${body}${CLOSE}`, out);
  }

  /** Text goes out with whitespace held back until more text follows, so no answer starts or ends in blanks. */
  private emit(text: string, out: ToolOutput): void {
    const all = this.pendingSpace + text;
    const body = this.atStart ? all.trimStart() : all;
    const trimmed = body.trimEnd();
    this.pendingSpace = body.slice(trimmed.length);
    if (trimmed.length === 0) return;
    out.content += trimmed;
    this.atStart = false;
  }
}

/** A whole answer, parsed at once (non-streaming). */
export function parseToolOutput(text: string, names: ReadonlySet<string>): ToolOutput {
  const stream = new ToolCallStream(names);
  const first = stream.push(text);
  const rest = stream.end();
  return { content: first.content + rest.content, calls: [...first.calls, ...rest.calls] };
}

/**
 * The output of a grammar-constrained call (tool_choice required or named, as vLLM constrains it): for a named
 * function the arguments object itself; for `required` a list of `{"name", "parameters"}` objects.
 */
export function parseConstrainedCalls(text: string, choice: Exclude<ToolChoice, 'auto' | 'none'>, names: ReadonlySet<string>): ParsedCall[] | null {
  const value = parseJson(text.trim());
  if (typeof choice === 'object') {
    return isObject(value) ? [{ id: newCallId(), name: choice.name, arguments: JSON.stringify(value) }] : null;
  }
  if (!Array.isArray(value) || value.length === 0) return null;
  const calls = value.map((v) => callOf(v, names));
  return calls.every((c) => c !== null) ? (calls as ParsedCall[]) : null;
}

/** The JSON schema a constrained call's output must match (the shapes parseConstrainedCalls reads). */
export function constrainedCallSchema(tools: { function: { name: string; parameters: Record<string, unknown> } }[], choice: Exclude<ToolChoice, 'auto' | 'none'>): Record<string, unknown> {
  if (typeof choice === 'object') return tools.find((t) => t.function.name === choice.name)!.function.parameters;
  return {
    type: 'array',
    minItems: 1,
    items: {
      anyOf: tools.map((t) => ({
        type: 'object',
        properties: { name: { const: t.function.name }, parameters: t.function.parameters },
        required: ['name', 'parameters'],
        additionalProperties: false,
      })),
    },
  };
}

function bareJsonCalls(text: string, names: ReadonlySet<string>): ParsedCall[] | null {
  let body = text.trim();
  if (body.startsWith(PYTHON_TAG)) body = body.slice(PYTHON_TAG.length).trim();
  if (body.length === 0) return null;
  let value = parseJson(body);
  // Llama 3.1 separates several calls with semicolons.
  if (value === undefined && body.includes(';')) {
    const parts = body.split(';').map((p) => parseJson(p.trim()));
    value = parts.every((p) => p !== undefined) ? parts : undefined;
  }
  const list = Array.isArray(value) ? value : [value];
  const calls = list.map((v) => callOf(v, names));
  return calls.length > 0 && calls.every((c) => c !== null) ? (calls as ParsedCall[]) : null;
}

function callOf(value: unknown, names: ReadonlySet<string>): ParsedCall | null {
  if (!isObject(value) || typeof value.name !== 'string' || !names.has(value.name)) return null;
  const args = value.arguments ?? value.parameters ?? {};
  if (typeof args === 'string') {
    // Some models write the arguments as a JSON string, as the API returns them.
    return isObject(parseJson(args)) ? { id: newCallId(), name: value.name, arguments: args } : null;
  }
  return isObject(args) ? { id: newCallId(), name: value.name, arguments: JSON.stringify(args) } : null;
}

/** How many trailing characters of `text` could begin `<tool_call>`. */
function partialTagLength(text: string): number {
  for (let n = Math.min(OPEN.length - 1, text.length); n > 0; n--) {
    if (OPEN.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
