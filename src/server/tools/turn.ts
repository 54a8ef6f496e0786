import type { OutputConstraint } from '../../engine/types.js';
import { constrainedCallSchema, parseConstrainedCalls, ToolCallStream, type ParsedCall, type ToolOutput } from './parse.js';
import type { ToolSetup } from './request.js';

/** One answer's output seen through the request's tools: text to show and calls, as the text arrives. */
export interface ToolTurn {
  push(text: string): ToolOutput;
  end(): ToolOutput;
}

/** Null when the request offers no tools (or forbids calling them): the output is all text. */
export function toolTurn(setup: ToolSetup | null): ToolTurn | null {
  if (!setup || setup.choice === 'none') return null;
  const names = new Set(setup.tools.map((t) => t.function.name));
  const choice = setup.choice;
  if (choice === 'auto') return new ToolCallStream(names);
  return new ConstrainedTurn((text) => parseConstrainedCalls(text, choice, names));
}

/**
 * A grammar-constrained call (tool_choice required or named) is JSON from the first token: nothing is text, and
 * the calls are read once it is complete. Output that does not parse (cut off by max_tokens) is returned as text.
 */
class ConstrainedTurn implements ToolTurn {
  private text = '';

  constructor(private readonly parse: (text: string) => ParsedCall[] | null) {}

  push(text: string): ToolOutput {
    this.text += text;
    return { content: '', calls: [] };
  }

  end(): ToolOutput {
    const calls = this.parse(this.text);
    return calls ? { content: '', calls } : { content: this.text, calls: [] };
  }
}

/** The grammar a call must follow when the client demands one (vLLM's approach); none for auto and none. */
export function toolConstraint(setup: ToolSetup | null): OutputConstraint | undefined {
  if (!setup || setup.choice === 'auto' || setup.choice === 'none') return undefined;
  return { type: 'json_schema', schema: constrainedCallSchema(setup.tools, setup.choice) };
}
