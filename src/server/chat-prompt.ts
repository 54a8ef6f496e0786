import { InvalidRequestError } from '../errors.js';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer/types.js';
import type { ChatRequest, ContentField } from './schemas.js';
import { renderWithTools } from './tools/prompt.js';
import { argumentsOf, type ToolSetup } from './tools/request.js';

/** What of a request becomes the chat prompt: chat completions and /tokenize read the same fields. */
export interface ChatPromptFields {
  messages: ChatRequest['messages'];
  chat_template_kwargs?: Record<string, unknown> | null;
}

/**
 * The prompt ids a chat request is served with; /tokenize counts with this too, so its count is the answer's
 * `usage.prompt_tokens`. BOS is added unless the template writes it (or the caller says otherwise).
 */
export function chatPromptIds(tok: TextTokenizer, body: ChatPromptFields, tools: ToolSetup | null, addSpecialTokens = !tok.chatTemplateAddsBos): number[] {
  return tok.encode(chatPrompt(tok, body, tools), { addSpecialTokens });
}

/** The rendered chat prompt, before encoding. */
export function chatPrompt(tok: TextTokenizer, body: ChatPromptFields, tools: ToolSetup | null): string {
  return renderWithTools(tok, body.messages.map(chatMessageOf), tools, body.chat_template_kwargs ?? undefined);
}

type RequestMessage = ChatRequest['messages'][number];

/** A request message as the template sees it: text content; an assistant's calls with their arguments parsed. */
function chatMessageOf(m: RequestMessage, i: number): ChatMessage {
  const message: ChatMessage = { role: m.role, content: textOf(m.content, `messages[${i}].content`) };
  if (m.name) message.name = m.name;
  if (m.role === 'tool') {
    if (!m.tool_call_id) throw new InvalidRequestError('a tool message needs the tool_call_id of the call it answers', `messages[${i}].tool_call_id`);
    message.tool_call_id = m.tool_call_id;
  }
  if (m.tool_calls && m.tool_calls.length > 0) {
    if (m.role !== 'assistant') throw new InvalidRequestError('only assistant messages carry tool_calls', `messages[${i}].tool_calls`);
    message.tool_calls = m.tool_calls.map((call, j) => ({
      ...(call.id && { id: call.id }),
      type: 'function' as const,
      function: { name: call.function.name, arguments: argumentsOf(call.function.arguments, `messages[${i}].tool_calls[${j}].function.arguments`) },
    }));
  }
  return message;
}

/** Text parts only: images, audio and files cannot reach a text-only local model. */
export function textOf(content: ContentField | null | undefined, param: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((part, j) => {
      if (part.type !== 'text' || typeof part.text !== 'string') {
        throw new InvalidRequestError(`content parts of type '${part.type}' are not supported; only 'text' parts are`, `${param}[${j}]`);
      }
      return part.text;
    })
    .join('');
}

