import type { Context } from 'hono';
import type { TokenLogprob } from '../../engine/types.js';
import { InvalidRequestError } from '../../errors.js';
import type { TextTokenizer } from '../../model/tokenizer/types.js';
import { collectToolOutput, type ToolEvent, type ToolTurn } from '../tools/parse.js';
import { toolSetupOf, type ToolSetup } from '../tools/request.js';
import { outputConstraint, toolTurn } from '../tools/turn.js';
import { chatPromptIds, textOf } from '../chat-prompt.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { lookaheadOf, nOf, samplingOf, stopOf } from '../generation.js';
import { forwardIfRemote } from '../passthrough.js';
import { readJson, sessionIdOf, tenantOf } from '../request.js';
import { constraintOfResponseFormat } from '../response-format.js';
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
    const tools = toolSetupOf(body, 'chat');
    const constraint = outputConstraint(tools, constraintOfResponseFormat(body.response_format), 'response_format');
    const tok = deps.engine.tokenizer(body.model);
    const promptIds = chatPromptIds(tok, body, tools);
    const prediction = body.prediction ? textOf(body.prediction.content, 'prediction.content') : '';
    const predictionIds = prediction ? tok.encode(prediction, { addSpecialTokens: false }) : undefined;
    const requested = [body.max_tokens, body.max_completion_tokens].filter((v): v is number => typeof v === 'number');

    return generate(
      c,
      deps,
      chatShape(tok, tools),
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

/** Per choice: what the tools make of the output, and the stream index of each call begun. */
interface ChatState {
  turn: ToolTurn;
  callIndex: Map<string, number>;
}

/** OpenAI reports `tool_calls` as the finish reason of an answer that called tools and was not cut off. */
function finishOf(reason: string, calls: number): string {
  return calls > 0 && reason === 'stop' ? 'tool_calls' : reason;
}

/**
 * One streamed delta from tool events: text as content; a call as its first `tool_calls` entry (id, name, empty
 * arguments) followed by argument pieces, as OpenAI streams them. A call that completes without having begun
 * goes out whole.
 */
function deltaOf(events: readonly ToolEvent[], state: ChatState): { content?: string; tool_calls?: object[] } | null {
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
  if (!content && calls.length === 0) return null;
  return { ...(content && { content }), ...(calls.length > 0 && { tool_calls: calls }) };
}

function chatShape(tok: TextTokenizer, tools: ToolSetup | null): ResponseShape<ChatState> {
  return {
    idPrefix: 'chatcmpl-',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    newState: () => ({ turn: toolTurn(tools), callIndex: new Map() }),
    opening: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
    delta: (index, text, logprobs, state) => {
      const lp = logprobs ? chatLogprobs(tok, logprobs) : null;
      const delta = deltaOf(state.turn.push(text), state);
      return delta || lp ? { index, delta: delta ?? {}, logprobs: lp, finish_reason: null } : null;
    },
    flush: (index, state) => {
      const delta = deltaOf(state.turn.end(), state);
      return delta ? [{ index, delta, logprobs: null, finish_reason: null }] : [];
    },
    closing: (index, finishReason, state) => ({ index, delta: {}, logprobs: null, finish_reason: finishOf(finishReason, state.callIndex.size) }),
    choice: (o, state) => {
      const { content, calls } = collectToolOutput([...state.turn.push(o.text), ...state.turn.end()]);
      const message = {
        role: 'assistant',
        content: calls.length > 0 && content === '' ? null : content,
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
  };
}
