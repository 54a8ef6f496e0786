import type { OutputConstraint } from '../../engine/types.js';
import { validateConstraint } from '../../engine/grammar/index.js';
import { constrainedCallSchema, newCallId, parseRequiredCalls, ToolCallStream, type ToolEvent, type ToolTurn } from './parse.js';
import type { ToolSetup } from './request.js';

/**
 * How a request's output is read: all text without tools (or with tool_choice none), else through the tools; with
 * a response format as well, as the answer or the calls that outputConstraint's grammar allows.
 */
export function toolTurn(setup: ToolSetup | null, formatted = false): ToolTurn {
  if (!setup || setup.choice === 'none') return plainText;
  const names = new Set(setup.tools.map((t) => t.function.name));
  const choice = setup.choice;
  if (choice === 'auto') return formatted ? new AnswerOrCallsTurn(names) : new ToolCallStream(names);
  if (typeof choice === 'object') return new NamedCallTurn(choice.name);
  return new RequiredCallsTurn(names);
}

const plainText: ToolTurn = {
  push: (text) => (text ? [{ type: 'text', text }] : []),
  end: () => [],
};

/**
 * A call to a named function is constrained to its arguments object from the first token: the output streams
 * as that call's arguments and ends it, whatever it holds (a max_tokens cut leaves it incomplete, as OpenAI's do).
 */
class NamedCallTurn implements ToolTurn {
  private readonly id = newCallId();
  private text = '';

  constructor(private readonly name: string) {}

  push(text: string): ToolEvent[] {
    const begin: ToolEvent[] = this.text === '' && text !== '' ? [{ type: 'call_begin', id: this.id, name: this.name }] : [];
    this.text += text;
    return text ? [...begin, { type: 'arguments', id: this.id, delta: text }] : begin;
  }

  end(): ToolEvent[] {
    const begin: ToolEvent[] = this.text === '' ? [{ type: 'call_begin', id: this.id, name: this.name }] : [];
    return [...begin, { type: 'call_end', call: { id: this.id, name: this.name, arguments: this.text } }];
  }
}

/**
 * `required` is constrained to a list of `{"name", "parameters"}` calls: read once complete. Output that does not
 * parse (cut off by max_tokens) is returned as text.
 */
class RequiredCallsTurn implements ToolTurn {
  private text = '';

  constructor(private readonly names: ReadonlySet<string>) {}

  push(text: string): ToolEvent[] {
    this.text += text;
    return [];
  }

  end(): ToolEvent[] {
    const calls = parseRequiredCalls(this.text, this.names);
    if (!calls) return this.text ? [{ type: 'text', text: this.text }] : [];
    return calls.map((call) => ({ type: 'call_end', call }));
  }
}

/**
 * Output constrained to the answer's format or to a list of calls (tool_choice auto with a response format): an
 * answer that opens a list is held and read as calls at the end (text if it is none); any other answer streams as
 * the formatted text it is.
 */
class AnswerOrCallsTurn implements ToolTurn {
  /** Set once the answer opened a list: everything goes to it. */
  private calls: RequiredCallsTurn | null = null;
  private decided = false;
  /** Leading whitespace, held until the first character decides. */
  private lead = '';

  constructor(private readonly names: ReadonlySet<string>) {}

  push(text: string): ToolEvent[] {
    if (this.calls) return this.calls.push(text);
    if (this.decided) return text ? [{ type: 'text', text }] : [];
    const all = this.lead + text;
    const first = all.trimStart()[0];
    if (first === undefined) {
      this.lead = all;
      return [];
    }
    this.decided = true;
    if (first !== '[') return [{ type: 'text', text: all }];
    this.calls = new RequiredCallsTurn(this.names);
    return this.calls.push(all);
  }

  end(): ToolEvent[] {
    if (this.calls) return this.calls.end();
    return !this.decided && this.lead ? [{ type: 'text', text: this.lead }] : [];
  }
}

/**
 * The one grammar a generation follows: the call(s) when the client demands one (tool_choice required or named,
 * vLLM's approach; a response format is for a later answer); with tool_choice auto and a format, either the
 * formatted answer or a list of calls, one grammar allowing both, as vLLM does; else the format.
 */
export function outputConstraint(setup: ToolSetup | null, format: OutputConstraint | null | undefined, formatParam: string): OutputConstraint | undefined {
  const choice = setup?.choice ?? 'none';
  if (setup && choice !== 'none' && choice !== 'auto') return { type: 'json_schema', schema: constrainedCallSchema(setup.tools, choice, setup.parallel) };
  if (!setup || choice !== 'auto' || !format) return format ?? undefined;
  // In the union the calls are constrained, so their parameters must be schemas the grammar enforces.
  setup.tools.forEach((t, i) => validateConstraint({ type: 'json_schema', schema: t.function.parameters }, `tools[${i}]`));
  const calls = constrainedCallSchema(setup.tools, 'required', setup.parallel);
  if (format.type === 'json_object') {
    return { type: 'json_schema', schema: { anyOf: [{ type: 'object', additionalProperties: true }, calls] } };
  }
  // Definitions stay at the root, where the format's `#/$defs/...` references point.
  const { $defs, definitions, $schema: _, ...answer } = format.schema;
  const schema = { ...($defs !== undefined && { $defs }), ...(definitions !== undefined && { definitions }), anyOf: [answer, calls] };
  validateConstraint({ type: 'json_schema', schema }, formatParam);
  return { type: 'json_schema', schema, ...(format.name !== undefined && { name: format.name }), ...(format.strict !== undefined && { strict: format.strict }) };
}
