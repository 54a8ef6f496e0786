import type { Context } from 'hono';
import type { TokenLogprob } from '../../engine/types.js';
import { InvalidRequestError } from '../../errors.js';
import type { ChatMessage, TextTokenizer } from '../../model/tokenizer/types.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { lookaheadOf, nOf, samplingOf, stopOf } from '../generation.js';
import { forwardIfRemote } from '../passthrough.js';
import { readJson, sessionIdOf, tenantOf } from '../request.js';
import { constraintOfResponseFormat } from '../response-format.js';
import { generate, type ResponseShape } from '../respond.js';
import { chatRequestSchema, type ChatRequest, type ContentField } from '../schemas.js';
import { tokenText } from './token-text.js';

export function chatCompletions(deps: ServerDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const { text, body: raw } = await readJson(c);
    const forwarded = await forwardIfRemote(deps, c, raw, text, 'chat/completions');
    if (forwarded) return forwarded;
    const body = chatRequestSchema.parse(raw);
    rejectUnsupported(body);
    const constraint = constraintOfResponseFormat(body.response_format);

    const tok = deps.engine.tokenizer(body.model);
    const messages: ChatMessage[] = body.messages.map((m, i) => ({ role: m.role, content: textOf(m.content, `messages[${i}].content`) }));
    const promptIds = tok.encode(tok.renderChat(messages), { addSpecialTokens: !tok.chatTemplateAddsBos });
    const prediction = body.prediction ? textOf(body.prediction.content, 'prediction.content') : '';
    const predictionIds = prediction ? tok.encode(prediction, { addSpecialTokens: false }) : undefined;
    const requested = [body.max_tokens, body.max_completion_tokens].filter((v): v is number => typeof v === 'number');

    return generate(
      c,
      deps,
      chatShape(tok),
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
  if (body.tools && body.tools.length > 0) throw new InvalidRequestError('tools are not supported by this server', 'tools');
}

/** Text parts only: images, audio and files cannot reach a text-only local model. */
function textOf(content: ContentField | null | undefined, param: string): string {
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

function chatLogprobs(tok: TextTokenizer, lps: TokenLogprob[]) {
  const entry = (token: number, logprob: number) => {
    const text = tokenText(tok, token);
    return { token: text, logprob, bytes: [...Buffer.from(text, 'utf8')] };
  };
  return {
    content: lps.map((lp) => ({ ...entry(lp.token, lp.logprob), top_logprobs: lp.top.map((t) => entry(t.token, t.logprob)) })),
    refusal: null,
  };
}

function chatShape(tok: TextTokenizer): ResponseShape<null> {
  return {
    idPrefix: 'chatcmpl-',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    newState: () => null,
    opening: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
    delta: (index, text, logprobs) => ({
      index,
      delta: { content: text },
      logprobs: logprobs ? chatLogprobs(tok, logprobs) : null,
      finish_reason: null,
    }),
    closing: (index, finishReason) => ({ index, delta: {}, logprobs: null, finish_reason: finishReason }),
    choice: (o) => ({
      index: o.index,
      message: { role: 'assistant', content: o.text, refusal: null, annotations: [] },
      logprobs: o.logprobs.length > 0 ? chatLogprobs(tok, o.logprobs) : null,
      finish_reason: o.result.finishReason,
    }),
  };
}
