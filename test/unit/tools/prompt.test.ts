import { describe, expect, it } from 'vitest';
import { ChatTemplate } from '../../../src/model/tokenizer/chat-template.js';
import type { ChatMessage, ChatRenderOptions, ChatTool, TextTokenizer } from '../../../src/model/tokenizer/types.js';
import { renderWithTools } from '../../../src/server/tools/prompt.js';

/** A Qwen2.5-style template, reduced to what matters here: it reads `tools` and renders tool turns itself. */
const TOOLS_TEMPLATE =
  '{%- if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>\n{%- endif %}' +
  '{%- for m in messages %}{%- if m.tool_calls %}[{{ m.role }} calls{% for c in m.tool_calls %} {{ c.function.name }}({{ c.function.arguments | tojson }}){% endfor %}]' +
  '{%- elif m.role == "tool" %}[result {{ m.content }}]{%- else %}[{{ m.role }}: {{ m.content }}]{%- endif %}{%- endfor %}[assistant:';
const CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}<|im_start|>assistant\\n";

function tokenizer(template: string): TextTokenizer {
  const chat = new ChatTemplate({ template, bosToken: null, eosToken: null });
  return {
    vocabSize: 0,
    bosTokenId: null,
    eosTokenIds: [],
    chatTemplateAddsBos: false,
    chatTemplateTakesTools: chat.takesTools,
    chatTemplateThinks: chat.thinks,
    encode: () => [],
    decode: () => '',
    tokenBytes: () => null,
    renderChat: (messages: ChatMessage[], options?: ChatRenderOptions) => chat.render(messages, options),
  };
}

const weather: ChatTool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
const history: ChatMessage[] = [
  { role: 'user', content: 'Weather?' },
  { role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Oslo' } } }] },
  { role: 'tool', tool_call_id: 'c1', content: 'rain' },
];

describe('rendering tools into the prompt', () => {
  it('a template that reads tools gets them and the structured tool turns (arguments as objects)', () => {
    const tok = tokenizer(TOOLS_TEMPLATE);
    expect(tok.chatTemplateTakesTools).toBe(true);
    expect(renderWithTools(tok, history, { tools: [weather], choice: 'auto', parallel: true })).toBe(
      '<tools>get_weather;</tools>[user: Weather?][assistant calls get_weather({"city": "Oslo"})][result rain][assistant:',
    );
    // tool_choice none: the tools are not offered.
    expect(renderWithTools(tok, history.slice(0, 1), { tools: [weather], choice: 'none', parallel: true })).toBe('[user: Weather?][assistant:');
  });

  it('a plain ChatML template gets a Hermes system block, merged into an existing system turn', () => {
    const tok = tokenizer(CHATML);
    expect(tok.chatTemplateTakesTools).toBe(false);
    const prompt = renderWithTools(tok, [{ role: 'system', content: 'Be brief.' }, ...history], { tools: [weather], choice: 'auto', parallel: true });
    expect(prompt.startsWith('<|im_start|>system\nBe brief.\n\nYou may call one or more functions')).toBe(true);
    expect(prompt.match(/<\|im_start\|>system/g)).toHaveLength(1);
    expect(prompt).toContain('<tools>\n{"type":"function","function":{"name":"get_weather"');
    expect(prompt).toContain('<|im_start|>assistant\n<tool_call>\n{"name":"get_weather","arguments":{"city":"Oslo"}}\n</tool_call><|im_end|>');
    expect(prompt).toContain('<|im_start|>user\n<tool_response>\nrain\n</tool_response><|im_end|>');
  });

  it('without tools and tool turns the prompt is the template\'s own', () => {
    const tok = tokenizer(CHATML);
    expect(renderWithTools(tok, history.slice(0, 1), null)).toBe(tok.renderChat(history.slice(0, 1)));
  });
});
