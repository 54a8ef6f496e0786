import type { ChatMessage, ChatTool, TextTokenizer } from '../../model/tokenizer/types.js';
import type { ToolSetup } from './request.js';

/**
 * The prompt of a request with tools. A chat template that reads `tools` (Qwen, Hermes, Llama 3.1, Mistral) gets
 * the tools and the structured tool turns and renders them itself. One that does not (plain ChatML, such as
 * chat-llama-5m's) gets them written in the Hermes format: the function signatures in the system turn, earlier
 * calls as `<tool_call>` JSON in assistant turns, results as `<tool_response>` in user turns — the format the
 * parser reads back.
 */
export function renderWithTools(
  tok: TextTokenizer,
  messages: ChatMessage[],
  setup: ToolSetup | null,
  templateKwargs?: Record<string, unknown>,
): string {
  const offered = setup && setup.choice !== 'none' ? setup.tools : [];
  if (tok.chatTemplateTakesTools) return tok.renderChat(messages, { templateKwargs, tools: offered });
  const hasToolTurns = messages.some((m) => m.role === 'tool' || (m.tool_calls?.length ?? 0) > 0);
  if (offered.length === 0 && !hasToolTurns) return tok.renderChat(messages, { templateKwargs });
  const flat = messages.map(hermesTurn);
  if (offered.length > 0) {
    const block = hermesSystem(offered);
    if (flat[0]?.role === 'system') flat[0] = { role: 'system', content: `${flat[0].content}\n\n${block}` };
    else flat.unshift({ role: 'system', content: block });
  }
  return tok.renderChat(flat, { templateKwargs });
}

function hermesSystem(tools: ChatTool[]): string {
  const signatures = tools.map((t) => JSON.stringify(t)).join('\n');
  return (
    'You may call one or more functions to assist with the user query.\n\n' +
    'You are provided with function signatures within <tools></tools> XML tags:\n' +
    `<tools>\n${signatures}\n</tools>\n\n` +
    'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
  );
}

function hermesTurn(m: ChatMessage): ChatMessage {
  if (m.role === 'tool') return { role: 'user', content: `<tool_response>\n${m.content}\n</tool_response>` };
  if (m.tool_calls && m.tool_calls.length > 0) {
    const calls = m.tool_calls.map((c) => `<tool_call>\n${JSON.stringify({ name: c.function.name, arguments: c.function.arguments })}\n</tool_call>`);
    return { role: m.role, content: [m.content, ...calls].filter((s) => s.length > 0).join('\n') };
  }
  return { role: m.role, content: m.content };
}
