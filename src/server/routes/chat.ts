import type { Context } from 'hono';
import type { TokenLogprob } from '../../engine/types.js';
import { encodeAtMost } from '../../engine/encode-bounded.js';
import { ContextLengthError, InvalidRequestError } from '../../errors.js';
import type { TextTokenizer } from '../../model/tokenizer/types.js';
import { collectToolOutput, type ToolEvent, type ToolTurn } from '../tools/parse.js';
import { toolSetupOf, type ToolSetup } from '../tools/request.js';
import { outputConstraint, toolTurn } from '../tools/turn.js';
import { chatPrompt, textOf } from '../chat-prompt.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { lookaheadOf, nOf, samplingOf, stopOf } from '../generation.js';
import { forwardIfRemote } from '../passthrough.js';
import { readJson, sessionIdOf, tenantOf } from '../request.js';
import { constraintOfResponseFormat, literalBound } from '../response-format.js';
import { effortOf, reasoningSetupOf, reasoningTokens, splitThinking, thinkingKwargs, ThinkingStream, type ReasoningSetup } from '../reasoning.js';
import { generate, type ResponseShape } from '../respond.js';
import { chatRequestSchema, type ChatRequest } from '../schemas.js';
import { tokenText } from './token-text.js';

export function chatCompletions(deps: ServerDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const { text, body: raw } = await readJson(c);
    const forwarded = await forwardIfRemote(deps, c, raw, text, 'chat/completions');
    if (forwarded) return forwarded;
    const body = chatRequestSchema.parse(raw);
    rejectUnsupported(body);
    const bound = literalBound(deps.engine, body.model);
    const tools = toolSetupOf(body, 'chat', bound);
    const format = constraintOfResponseFormat(body.response_format, bound);
    const constraint = outputConstraint(tools, format, 'response_format');
    const tok = deps.engine.tokenizer(body.model);
    const kwargs = thinkingKwargs(tok, effortOf(body.reasoning_effort, 'reasoning_effort'), body.chat_template_kwargs);
    const prompt = chatPrompt(tok, { messages: body.messages, chat_template_kwargs: kwargs ?? null }, tools);
    const promptIds = tok.encode(prompt, { addSpecialTokens: !tok.chatTemplateAddsBos });
    const context = deps.engine.models.find((m) => m.id === body.model)!.contextLength;
    const predictionIds = body.prediction ? predictionOf(tok, textOf(body.prediction.content, 'prediction.content'), context) : undefined;
    const requested = [body.max_tokens, body.max_completion_tokens].filter((v): v is number => typeof v === 'number');

    return generate(
      c,
      deps,
      chatShape(tok, tools, format !== null, reasoningSetupOf(tok, prompt)),
      {
        modelId: body.model,
        prompts: [promptIds],
        n: nOf(body.n, deps.config),
        maxTokens: requested.length > 0 ? Math.min(...requested) : null,
        maxTokensParam: body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens',
        promptParam: 'messages',
        sampling: samplingOf(body),
        stop: stopOf(body.stop),
        logprobs: body.logprobs ? (body.top_logprobs ?? 0) : null,
        lookahead: lookaheadOf(body.lookahead, deps.config.lookahead),
        ...(predictionIds && { predictionIds }),
        ignoreEos: body.ignore_eos === true,
        ...(constraint && { constraint }),
        sessionId: sessionIdOf(c, body),
        tenant: tenantOf(c),
      },
      body,
    );
  };
}

/**
 * The predicted output's ids; a prediction longer than the whole context could never be output, and is refused
 * after tokenizing no more of it than the context holds.
 */
function predictionOf(tok: TextTokenizer, text: string, context: number): number[] | undefined {
  if (!text) return undefined;
  const { ids, cut } = encodeAtMost(tok, text, context);
  if (cut) {
    throw new ContextLengthError(`prediction is longer than this model's maximum context length of ${context} tokens; it could never be the output. Please shorten it.`, 'prediction');
  }
  return ids;
}

function rejectUnsupported(body: ChatRequest): void {
  if (body.top_logprobs != null && !body.logprobs) {
    throw new InvalidRequestError('top_logprobs requires logprobs to be true', 'top_logprobs');
  }
}

function chatLogprobs(tok: TextTokenizer, lps: TokenLogprob[]) {
  const entry = (token: number, logprob: number) => {
    const text = tokenText(tok, token);
    // Special tokens stand for no bytes of text; OpenAI gives their text's.
    return { token: text, logprob, bytes: [...(tok.tokenBytes(token) ?? Buffer.from(text, 'utf8'))] };
  };
  return {
    content: lps.map((lp) => ({ ...entry(lp.token, lp.logprob), top_logprobs: lp.top.map((t) => entry(t.token, t.logprob)) })),
    refusal: null,
  };
}

/** Per choice: what the tools make of the output, the stream index of each call begun, and its thinking. */
interface ChatState {
  turn: ToolTurn;
  callIndex: Map<string, number>;
  thinking: ThinkingStream | null;
}

/** OpenAI reports `tool_calls` as the finish reason of an answer that called tools and was not cut off. */
function finishOf(reason: string, calls: number): string {
  return calls > 0 && reason === 'stop' ? 'tool_calls' : reason;
}

/** Thinking under both names peers use: `reasoning_content` (llama.cpp, DeepSeek) and `reasoning` (vLLM, Ollama). */
function reasoningFields(reasoning: string | null) {
  return { reasoning_content: reasoning, reasoning };
}

/**
 * One streamed delta from thinking and tool events: thinking as reasoning; text as content; a call as its first
 * `tool_calls` entry (id, name, empty arguments) followed by argument pieces, as OpenAI streams them. A call that
 * completes without having begun goes out whole.
 */
function deltaOf(reasoning: string, events: readonly ToolEvent[], state: ChatState): object | null {
  let content = '';
  const calls: object[] = [];
  const begin = (id: string, name: string) => {
    state.callIndex.set(id, state.callIndex.size);
    calls.push({ index: state.callIndex.get(id), id, type: 'function', function: { name, arguments: '' } });
  };
  for (const e of events) {
    if (e.type === 'text') content += e.text;
    else if (e.type === 'call_begin') begin(e.id, e.name);
    else if (e.type === 'arguments') calls.push({ index: state.callIndex.get(e.id), function: { arguments: e.delta } });
    else if (!state.callIndex.has(e.call.id)) {
      begin(e.call.id, e.call.name);
      calls.push({ index: state.callIndex.get(e.call.id), function: { arguments: e.call.arguments } });
    }
  }
  if (!reasoning && !content && calls.length === 0) return null;
  return { ...(reasoning && reasoningFields(reasoning)), ...(content && { content }), ...(calls.length > 0 && { tool_calls: calls }) };
}

function chatShape(tok: TextTokenizer, tools: ToolSetup | null, formatted: boolean, reasoning: ReasoningSetup | null): ResponseShape<ChatState> {
  return {
    idPrefix: 'chatcmpl-',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    newState: () => ({ turn: toolTurn(tools, formatted), callIndex: new Map(), thinking: reasoning && new ThinkingStream(reasoning) }),
    opening: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
    delta: (index, text, logprobs, state) => {
      const lp = logprobs ? chatLogprobs(tok, logprobs) : null;
      const piece = splitThinking(state.thinking, text, false);
      const delta = deltaOf(piece.reasoning, state.turn.push(piece.content), state);
      return delta || lp ? { index, delta: delta ?? {}, logprobs: lp, finish_reason: null } : null;
    },
    flush: (index, state) => {
      const piece = splitThinking(state.thinking, '', true);
      const delta = deltaOf(piece.reasoning, [...state.turn.push(piece.content), ...state.turn.end()], state);
      return delta ? [{ index, delta, logprobs: null, finish_reason: null }] : [];
    },
    closing: (index, finishReason, state) => ({ index, delta: {}, logprobs: null, finish_reason: finishOf(finishReason, state.callIndex.size) }),
    choice: (o, state) => {
      const piece = splitThinking(state.thinking, o.text, true);
      const { content, calls } = collectToolOutput([...state.turn.push(piece.content), ...state.turn.end()]);
      const message = {
        role: 'assistant',
        content: calls.length > 0 && content === '' ? null : content,
        ...(reasoning && reasoningFields(piece.reasoning || null)),
        refusal: null,
        annotations: [],
        ...(calls.length > 0 && {
          tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
        }),
      };
      return {
        index: o.index,
        message,
        logprobs: o.logprobs.length > 0 ? chatLogprobs(tok, o.logprobs) : null,
        finish_reason: finishOf(o.result.finishReason, calls.length),
      };
    },
    reasoningTokens: (tokens, state) => (state.thinking ? reasoningTokens(tok, tokens, state.thinking) : 0),
  };
}
