import type { OutputConstraint } from '../../engine/types.js';
import { InvalidRequestError } from '../../errors.js';
import { constrainedCallSchema, newCallId, parseRequiredCalls, ToolCallStream, type ToolEvent, type ToolTurn } from './parse.js';
import type { ToolSetup } from './request.js';

/** How a request's output is read: all text without tools (or with tool_choice none), else through the tools. */
export function toolTurn(setup: ToolSetup | null): ToolTurn {
  if (!setup || setup.choice === 'none') return plainText;
  const names = new Set(setup.tools.map((t) => t.function.name));
  const choice = setup.choice;
  if (choice === 'auto') return new ToolCallStream(names);
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
 * The one grammar a generation follows: the call(s) when the client demands one (tool_choice required or named,
 * vLLM's approach), else the requested output format. A format and callable tools together are refused: one
 * grammar cannot leave the model the choice between a JSON answer and a call.
 */
export function outputConstraint(setup: ToolSetup | null, format: OutputConstraint | null | undefined, formatParam: string): OutputConstraint | undefined {
  const choice = setup?.choice ?? 'none';
  if (format && choice !== 'none') throw new InvalidRequestError(`${formatParam} with tools is not supported by this server unless tool_choice is "none"`, formatParam);
  if (setup && choice !== 'none' && choice !== 'auto') return { type: 'json_schema', schema: constrainedCallSchema(setup.tools, choice, setup.parallel) };
  return format ?? undefined;
}
