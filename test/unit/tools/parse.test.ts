import { describe, expect, it } from 'vitest';
import { collectToolOutput, constrainedCallSchema, parseRequiredCalls, ToolCallStream, type ParsedCall, type ToolEvent } from '../../../src/server/tools/parse.js';
import { toolTurn } from '../../../src/server/tools/turn.js';

const names = new Set(['get_weather', 'add']);

function parseToolOutput(text: string, n: ReadonlySet<string> = names) {
  const s = new ToolCallStream(n);
  return collectToolOutput([...s.push(text), ...s.end()]);
}

/** Feeds the text in pieces of `size` characters; checks each begun call's argument deltas add up to its arguments. */
function streamed(text: string, size: number): { content: string; calls: ParsedCall[]; deltas: string[]; events: ToolEvent[] } {
  const s = new ToolCallStream(names);
  const events: ToolEvent[] = [];
  for (let i = 0; i < text.length; i += size) events.push(...s.push(text.slice(i, i + size)));
  events.push(...s.end());
  const args = new Map<string, string>();
  for (const e of events) {
    if (e.type === 'call_begin') args.set(e.id, '');
    if (e.type === 'arguments') args.set(e.id, args.get(e.id)! + e.delta);
    if (e.type === 'call_end' && args.has(e.call.id)) expect(args.get(e.call.id)).toBe(e.call.arguments);
  }
  return { ...collectToolOutput(events), deltas: events.flatMap((e) => (e.type === 'text' ? [e.text] : [])), events };
}

describe('tool call parsing', () => {
  it('reads Hermes/Qwen <tool_call> blocks, with text around them, in any chunking', () => {
    const text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>{"name":"add","arguments":{"a":1,"b":2}}</tool_call>';
    for (const size of [1, 2, 5, 1000]) {
      const out = streamed(text, size);
      expect(out.content).toBe('Let me check.');
      expect(out.calls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
        ['get_weather', { city: 'Paris' }],
        ['add', { a: 1, b: 2 }],
      ]);
      // Name-first calls stream: begun once, then argument pieces (several when the text comes in small pieces).
      expect(out.events.filter((e) => e.type === 'call_begin')).toHaveLength(2);
      if (size === 1) expect(out.events.filter((e) => e.type === 'arguments').length).toBeGreaterThan(10);
      // The markup never leaks into the text deltas.
      expect(out.deltas.join('')).not.toContain('<');
    }
  });

  it('reads Llama 3 bare JSON calls (parameters), a list of them, and the python tag', () => {
    expect(parseToolOutput('{"name": "add", "parameters": {"a": 1, "b": 2}}', names).calls[0]).toMatchObject({ name: 'add', arguments: '{"a":1,"b":2}' });
    expect(parseToolOutput('<|python_tag|>{"name": "add", "parameters": {}}; {"name": "get_weather", "parameters": {"city": "X"}}', names).calls.map((c) => c.name)).toEqual(['add', 'get_weather']);
    expect(parseToolOutput('[{"name": "add", "arguments": "{\\"a\\": 3}"}]', names).calls[0].arguments).toBe('{"a": 3}');
  });

  it('keeps as text: plain answers, JSON that is no call, calls to functions not offered, broken JSON', () => {
    expect(parseToolOutput('  The weather is fine.  ', names)).toEqual({ content: 'The weather is fine.', calls: [] });
    expect(parseToolOutput('{"answer": 42}', names)).toEqual({ content: '{"answer": 42}', calls: [] });
    expect(parseToolOutput('<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', names).calls).toEqual([]);
    expect(parseToolOutput('<tool_call>{"name": "add", "argu', names)).toEqual({ content: '<tool_call>{"name": "add", "argu</tool_call>', calls: [] });
    // Braces inside strings do not end the arguments early.
    expect(streamed('<tool_call>{"name": "add", "arguments": {"a": "}{", "b": [1, {"c": "\\"}"}]}}</tool_call>', 1).calls[0].arguments).toBe('{"a": "}{", "b": [1, {"c": "\\"}"}]}');
    expect(streamed('a < b and <tool', 3).content).toBe('a < b and <tool');
  });

  it('a call cut off before its closing tag still counts when its JSON is whole', () => {
    expect(parseToolOutput('<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n', names).calls).toHaveLength(1);
  });

  it('constrained calls: a named function streams its arguments from the first token; required reads a list', () => {
    const named = toolTurn({ tools: [], choice: { name: 'get_weather' }, parallel: true });
    const events = [...named.push('{"city": '), ...named.push('"Oslo"}'), ...named.end()];
    expect(events.map((e) => e.type)).toEqual(['call_begin', 'arguments', 'arguments', 'call_end']);
    expect(collectToolOutput(events).calls[0]).toMatchObject({ name: 'get_weather', arguments: '{"city": "Oslo"}' });
    expect(parseRequiredCalls('[{"name": "add", "parameters": {"a": 1}}]', names)!.map((c) => c.name)).toEqual(['add']);
    expect(parseRequiredCalls('[]', names)).toBeNull();
    const required = toolTurn({ tools: [{ type: 'function', function: { name: 'add', parameters: {} } }], choice: 'required', parallel: true });
    expect(collectToolOutput([...required.push('[{"name": "add", "parame'), ...required.end()])).toEqual({ content: '[{"name": "add", "parame', calls: [] });
    const tools = [{ function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'number' } } } } }];
    expect(constrainedCallSchema(tools, { name: 'add' }, true)).toBe(tools[0].function.parameters);
    expect(constrainedCallSchema(tools, 'required', true)).toMatchObject({ type: 'array', minItems: 1, items: { anyOf: [{ properties: { name: { const: 'add' } } }] } });
    expect(constrainedCallSchema(tools, 'required', true)).not.toHaveProperty('maxItems');
    expect(constrainedCallSchema(tools, 'required', false)).toMatchObject({ minItems: 1, maxItems: 1 });
  });

  it('gives every call its own id', () => {
    const calls = parseToolOutput('<tool_call>{"name":"add","arguments":{}}</tool_call><tool_call>{"name":"add","arguments":{}}</tool_call>', names).calls;
    expect(calls[0].id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(calls[0].id).not.toBe(calls[1].id);
  });
});
