import { describe, expect, it } from 'vitest';
import { constrainedCallSchema, parseConstrainedCalls, parseToolOutput, ToolCallStream, type ToolOutput } from '../../../src/server/tools/parse.js';

const names = new Set(['get_weather', 'add']);

/** Feeds the text in pieces of `size` characters and joins what comes out. */
function streamed(text: string, size: number): ToolOutput & { deltas: string[] } {
  const s = new ToolCallStream(names);
  const out = { content: '', calls: [] as ToolOutput['calls'], deltas: [] as string[] };
  const take = (o: ToolOutput) => {
    if (o.content) out.deltas.push(o.content);
    out.content += o.content;
    out.calls.push(...o.calls);
  };
  for (let i = 0; i < text.length; i += size) take(s.push(text.slice(i, i + size)));
  take(s.end());
  return out;
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
    expect(streamed('a < b and <tool', 3).content).toBe('a < b and <tool');
  });

  it('a call cut off before its closing tag still counts when its JSON is whole', () => {
    expect(parseToolOutput('<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n', names).calls).toHaveLength(1);
  });

  it('constrained calls: the named function\'s arguments, or a list of {name, parameters} for required', () => {
    expect(parseConstrainedCalls('{"city": "Oslo"}', { name: 'get_weather' }, names)![0]).toMatchObject({ name: 'get_weather', arguments: '{"city":"Oslo"}' });
    expect(parseConstrainedCalls('[{"name": "add", "parameters": {"a": 1}}]', 'required', names)!.map((c) => c.name)).toEqual(['add']);
    expect(parseConstrainedCalls('[]', 'required', names)).toBeNull();
    const tools = [{ function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'number' } } } } }];
    expect(constrainedCallSchema(tools, { name: 'add' })).toBe(tools[0].function.parameters);
    expect(constrainedCallSchema(tools, 'required')).toMatchObject({ type: 'array', minItems: 1, items: { anyOf: [{ properties: { name: { const: 'add' } } }] } });
  });

  it('gives every call its own id', () => {
    const calls = parseToolOutput('<tool_call>{"name":"add","arguments":{}}</tool_call><tool_call>{"name":"add","arguments":{}}</tool_call>', names).calls;
    expect(calls[0].id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(calls[0].id).not.toBe(calls[1].id);
  });
});
