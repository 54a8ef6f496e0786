import type { Context } from 'hono';
import type { TokenLogprob } from '../../engine/types.js';
import { InvalidRequestError } from '../../errors.js';
import type { TextTokenizer } from '../../model/tokenizer/types.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { lookaheadOf, nOf, samplingOf, stopOf } from '../generation.js';
import { forwardIfRemote } from '../passthrough.js';
import { readJson, sessionIdOf, tenantOf } from '../request.js';
import { constraintOfResponseFormat, literalBound } from '../response-format.js';
import { generate, type ResponseShape } from '../respond.js';
import { completionRequestSchema, type CompletionRequest } from '../schemas.js';
import { tokenText } from './token-text.js';

/** OpenAI's documented default for the legacy endpoint. */
const DEFAULT_MAX_TOKENS = 16;

export function completions(deps: ServerDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const { text, body: raw } = await readJson(c);
    const forwarded = await forwardIfRemote(deps, c, raw, text, 'completions');
    if (forwarded) return forwarded;
    const body = completionRequestSchema.parse(raw);
    if (body.echo) throw new InvalidRequestError('echo is not supported by this server', 'echo');
    if (body.suffix) throw new InvalidRequestError('suffix is not supported by this server', 'suffix');
    if (body.best_of != null && body.best_of !== (body.n ?? 1)) throw new InvalidRequestError('best_of is not supported by this server', 'best_of');

    const constraint = constraintOfResponseFormat(body.response_format, literalBound(deps.engine, body.model));
    const tok = deps.engine.tokenizer(body.model);
    const prompts = promptsOf(body.prompt, tok);
    return generate(
      c,
      deps,
      completionShape(tok),
      {
        modelId: body.model,
        prompts,
        n: nOf(body.n, deps.config),
        maxTokens: body.max_tokens ?? DEFAULT_MAX_TOKENS,
        maxTokensParam: 'max_tokens',
        promptParam: 'prompt',
        sampling: samplingOf(body),
        stop: stopOf(body.stop),
        logprobs: body.logprobs ?? null,
        lookahead: lookaheadOf(body.lookahead, deps.config.lookahead),
        ...(constraint && { constraint }),
        sessionId: sessionIdOf(c, { user: body.user }),
        tenant: tenantOf(c),
      },
      body,
    );
  };
}

function promptsOf(prompt: CompletionRequest['prompt'], tok: TextTokenizer): number[][] {
  const lists: (string | number[])[] = typeof prompt === 'string' ? [prompt] : typeof prompt[0] === 'number' ? [prompt as number[]] : (prompt as (string | number[])[]);
  return lists.map((p, i) => {
    if (typeof p === 'string') return tok.encode(p, { addSpecialTokens: true });
    const bad = p.find((t) => t >= tok.vocabSize);
    if (bad !== undefined) throw new InvalidRequestError(`token id ${bad} is outside the vocabulary (size ${tok.vocabSize})`, lists.length > 1 ? `prompt[${i}]` : 'prompt');
    return p;
  });
}

/** Per choice: the text length so far, for `text_offset`. */
interface OffsetState {
  offset: number;
}

function completionLogprobs(tok: TextTokenizer, lps: TokenLogprob[], state: OffsetState) {
  const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Record<string, number>[], text_offset: [] as number[] };
  for (const lp of lps) {
    const text = tokenText(tok, lp.token);
    out.tokens.push(text);
    out.token_logprobs.push(lp.logprob);
    out.top_logprobs.push(Object.fromEntries(lp.top.map((t) => [tokenText(tok, t.token), t.logprob])));
    out.text_offset.push(state.offset);
    state.offset += text.length;
  }
  return out;
}

function completionShape(tok: TextTokenizer): ResponseShape<OffsetState> {
  return {
    idPrefix: 'cmpl-',
    object: 'text_completion',
    chunkObject: 'text_completion',
    newState: () => ({ offset: 0 }),
    opening: () => null,
    delta: (index, text, logprobs, state) => ({
      index,
      text,
      logprobs: logprobs ? completionLogprobs(tok, logprobs, state) : null,
      finish_reason: null,
    }),
    closing: (index, finishReason) => ({ index, text: '', logprobs: null, finish_reason: finishReason }),
    choice: (o, state) => ({
      index: o.index,
      text: o.text,
      logprobs: o.logprobs.length > 0 ? completionLogprobs(tok, o.logprobs, state) : null,
      finish_reason: o.result.finishReason,
    }),
  };
}
