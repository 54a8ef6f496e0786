import { randomBytes } from 'node:crypto';
import { partialLength } from '../partial-tag.js';
import type { ToolChoice } from './request.js';

/** A call the model made: `arguments` is JSON text, as OpenAI returns it. */
export interface ParsedCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * What output turns into, in order: text to show; a call begun (its name known, its arguments to follow as
 * deltas); argument text of the begun call; a call complete. A call may also complete without having begun (its
 * JSON was only understood whole): then `call_end` carries all of it.
 */
export type ToolEvent =
  | { type: 'text'; text: string }
  | { type: 'call_begin'; id: string; name: string }
  | { type: 'arguments'; id: string; delta: string }
  | { type: 'call_end'; call: ParsedCall };

/** Model output seen through a request's tools, piece by piece. */
export interface ToolTurn {
  push(text: string): ToolEvent[];
  /** The output has ended: whatever is held back is decided now. */
  end(): ToolEvent[];
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
/** Llama 3.1 starts its JSON calls with this tag when it is in the vocabulary and not skipped. */
const PYTHON_TAG = '<|python_tag|>';
/** The head of a Hermes call whose arguments object can be streamed: name first, then the arguments' `{`. */
const CALL_HEAD = /^\s*\{\s*"name"\s*:\s*"([A-Za-z0-9_-]{1,64})"\s*,\s*"(?:arguments|parameters)"\s*:\s*(?=\{)/;

export function newCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/**
 * Splits model output into text and tool calls as it arrives, in the formats chat templates teach: Hermes/Qwen
 * `<tool_call>{"name": .., "arguments": ..}</tool_call>` blocks anywhere in the text, or a Llama 3 answer that is
 * nothing but JSON `{"name": .., "parameters": ..}` (or a list of those). Text that might still become a call is
 * held back until it is decided, so a client never sees the markup. A Hermes call whose name comes first streams
 * its arguments as they are generated; other calls complete whole. Calls naming functions not offered stay text.
 */
export class ToolCallStream implements ToolTurn {
  private buffer = '';
  private inCall = false;
  /** Everything inside the current `<tool_call>` so far: given back as text if it is no call after all. */
  private callText = '';
  private streaming: { id: string; name: string; args: ArgumentScanner } | null = null;
  /** True until something other than whitespace went out as text: only then may the answer be bare JSON. */
  private atStart = true;
  private pendingSpace = '';

  constructor(private readonly names: ReadonlySet<string>) {}

  push(text: string): ToolEvent[] {
    this.buffer += text;
    const out: ToolEvent[] = [];
    for (;;) {
      if (this.inCall) {
        const end = this.buffer.indexOf(CLOSE);
        this.advanceCall(end < 0 ? this.buffer.length - partialLength(this.buffer, CLOSE) : end, out);
        if (end < 0) return out;
        this.finishCall(out);
        this.buffer = this.buffer.slice(CLOSE.length);
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
      const keep = partialLength(this.buffer, OPEN);
      this.emit(this.buffer.slice(0, this.buffer.length - keep), out);
      this.buffer = this.buffer.slice(this.buffer.length - keep);
      return out;
    }
  }

  end(): ToolEvent[] {
    const out: ToolEvent[] = [];
    if (this.inCall) {
      // An answer cut off (or ended) before the closing tag: the call stands if its JSON is complete.
      this.advanceCall(this.buffer.length, out);
      this.finishCall(out);
    } else if (this.atStart) {
      const calls = bareJsonCalls(this.buffer, this.names);
      if (calls) for (const call of calls) out.push({ type: 'call_end', call });
      else this.emit(this.buffer, out);
    } else {
      this.emit(this.buffer, out);
    }
    this.buffer = '';
    return out;
  }

  /** Moves buffer[0, upto) into the current call, streaming its arguments once its head is known. */
  private advanceCall(upto: number, out: ToolEvent[]): void {
    const piece = this.buffer.slice(0, upto);
    this.buffer = this.buffer.slice(upto);
    this.callText += piece;
    if (!this.streaming) {
      const head = CALL_HEAD.exec(this.callText);
      if (!head || !this.names.has(head[1])) return;
      this.streaming = { id: newCallId(), name: head[1], args: new ArgumentScanner() };
      out.push({ type: 'call_begin', id: this.streaming.id, name: head[1] });
      const delta = this.streaming.args.feed(this.callText.slice(head[0].length));
      if (delta) out.push({ type: 'arguments', id: this.streaming.id, delta });
      return;
    }
    const delta = this.streaming.args.feed(piece);
    if (delta) out.push({ type: 'arguments', id: this.streaming.id, delta });
  }

  private finishCall(out: ToolEvent[]): void {
    const begun = this.streaming;
    if (begun) {
      // Begun calls end with exactly the argument text streamed, so the deltas add up to the final arguments.
      out.push({ type: 'call_end', call: { id: begun.id, name: begun.name, arguments: begun.args.text } });
    } else {
      const call = callOf(parseJson(this.callText.trim()), this.names);
      if (call) out.push({ type: 'call_end', call });
      else this.emit(`${OPEN}${this.callText}${CLOSE}`, out);
    }
    this.inCall = false;
    this.callText = '';
    this.streaming = null;
  }

  /** Text goes out with whitespace held back until more text follows, so no answer starts or ends in blanks. */
  private emit(text: string, out: ToolEvent[]): void {
    const all = this.pendingSpace + text;
    const body = this.atStart ? all.trimStart() : all;
    const trimmed = body.trimEnd();
    this.pendingSpace = body.slice(trimmed.length);
    if (trimmed.length === 0) return;
    out.push({ type: 'text', text: trimmed });
    this.atStart = false;
  }
}

/**
 * Takes characters of one JSON object as they come and says which belong to it: it ends where its outermost
 * brace closes (braces inside strings do not count).
 */
class ArgumentScanner {
  text = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private done = false;

  /** The part of `chunk` that belongs to the object. */
  feed(chunk: string): string {
    let taken = 0;
    while (taken < chunk.length && !this.done) {
      const c = chunk[taken++];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') this.done = --this.depth === 0;
    }
    const part = chunk.slice(0, taken);
    this.text += part;
    return part;
  }
}

/** Text and completed calls of a whole answer (non-streaming). */
export function collectToolOutput(events: readonly ToolEvent[]): { content: string; calls: ParsedCall[] } {
  let content = '';
  const calls: ParsedCall[] = [];
  for (const e of events) {
    if (e.type === 'text') content += e.text;
    else if (e.type === 'call_end') calls.push(e.call);
  }
  return { content, calls };
}

/** The output of tool_choice `required`, constrained (as vLLM does) to a list of `{"name", "parameters"}` calls. */
export function parseRequiredCalls(text: string, names: ReadonlySet<string>): ParsedCall[] | null {
  const value = parseJson(text.trim());
  if (!Array.isArray(value) || value.length === 0) return null;
  const calls = value.map((v) => callOf(v, names));
  return calls.every((c) => c !== null) ? (calls as ParsedCall[]) : null;
}

/** The JSON schema a constrained call's output must match (a named function's arguments, or what parseRequiredCalls reads). */
export function constrainedCallSchema(
  tools: { function: { name: string; parameters: Record<string, unknown> } }[],
  choice: Exclude<ToolChoice, 'auto' | 'none'>,
  parallel: boolean,
): Record<string, unknown> {
  if (typeof choice === 'object') return tools.find((t) => t.function.name === choice.name)!.function.parameters;
  return {
    type: 'array',
    minItems: 1,
    ...(!parallel && { maxItems: 1 }),
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
