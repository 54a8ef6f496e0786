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
    // Streamed, the prompt goes out first; its logprobs come only with the job's result, at the end.
    if (body.echo && body.stream && body.logprobs != null) throw new InvalidRequestError('echo with logprobs is supported on requests that are not streamed', 'echo');
    if (body.max_tokens === 0 && !body.echo) throw new InvalidRequestError('max_tokens may be 0 only with echo (to score the prompt)', 'max_tokens');
    if (body.suffix) throw new InvalidRequestError('suffix is not supported by this server', 'suffix');
    if (body.best_of != null && body.best_of !== (body.n ?? 1)) throw new InvalidRequestError('best_of is not supported by this server', 'best_of');

    const constraint = constraintOfResponseFormat(body.response_format, literalBound(deps.engine, body.model));
    const tok = deps.engine.tokenizer(body.model);
    const prompts = promptsOf(body.prompt, tok);
    const sent = promptList(body.prompt);
    // A prompt sent as text comes back as sent; one sent as token ids, as they decode.
    const echo = body.echo ? prompts.map((ids, i) => ({ ids, text: typeof sent[i] === 'string' ? sent[i] : tok.decode(ids) })) : null;
    return generate(
      c,
      deps,
      completionShape(tok, echo),
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
        promptLogprobs: echo !== null && body.logprobs != null,
        lookahead: lookaheadOf(body.lookahead, deps.config.lookahead),
        ignoreEos: body.ignore_eos === true,
        ...(constraint && { constraint }),
        sessionId: sessionIdOf(c, { user: body.user }),
        tenant: tenantOf(c),
      },
      body,
    );
  };
}

/** The prompts of a request, one per choice group: strings or token id lists. */
function promptList(prompt: CompletionRequest['prompt']): (string | number[])[] {
  return typeof prompt === 'string' ? [prompt] : typeof prompt[0] === 'number' ? [prompt as number[]] : (prompt as (string | number[])[]);
}

function promptsOf(prompt: CompletionRequest['prompt'], tok: TextTokenizer): number[][] {
  const lists = promptList(prompt);
  return lists.map((p, i) => {
    if (typeof p === 'string') return tok.encode(p, { addSpecialTokens: true });
    const bad = p.find((t) => t >= tok.vocabSize);
    if (bad !== undefined) throw new InvalidRequestError(`token id ${bad} is outside the vocabulary (size ${tok.vocabSize})`, lists.length > 1 ? `prompt[${i}]` : 'prompt');
    return p;
  });
}

/** `echo`: each prompt as sent back before its completions, with its ids for prompt logprobs. */
type Echo = { ids: number[]; text: string }[] | null;

/**
 * The prompt's share of `logprobs` under echo, as OpenAI gives it: every prompt token, the first with a null
 * logprob and null alternatives (nothing came before it to predict it).
 */
function promptLogprobs(tok: TextTokenizer, ids: number[], scored: TokenLogprob[], state: OffsetState) {
  const first = tokenText(tok, ids[0]);
  const offset = state.offset;
  state.offset += first.length;
  const rest = completionLogprobs(tok, scored, state);
  return {
    tokens: [first, ...rest.tokens],
    token_logprobs: [null, ...rest.token_logprobs] as (number | null)[],
    top_logprobs: [null, ...rest.top_logprobs] as (Record<string, number> | null)[],
    text_offset: [offset, ...rest.text_offset],
  };
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

function completionShape(tok: TextTokenizer, echo: Echo): ResponseShape<OffsetState> {
  return {
    idPrefix: 'cmpl-',
    object: 'text_completion',
    chunkObject: 'text_completion',
    newState: () => ({ offset: 0 }),
    opening: (index, promptIndex) => (echo ? { index, text: echo[promptIndex].text, logprobs: null, finish_reason: null } : null),
    delta: (index, text, logprobs, state) => ({
      index,
      text,
      logprobs: logprobs ? completionLogprobs(tok, logprobs, state) : null,
      finish_reason: null,
    }),
    closing: (index, finishReason) => ({ index, text: '', logprobs: null, finish_reason: finishReason }),
    choice: (o, state) => {
      const prompt = echo?.[o.promptIndex];
      const scored = o.result.promptLogprobs;
      if (!prompt || !scored) {
        return {
          index: o.index,
          text: (prompt?.text ?? '') + o.text,
          logprobs: o.logprobs.length > 0 ? completionLogprobs(tok, o.logprobs, state) : null,
          finish_reason: o.result.finishReason,
        };
      }
      const head = promptLogprobs(tok, prompt.ids, scored, state);
      const tail = completionLogprobs(tok, o.logprobs, state);
      const logprobs = {
        tokens: [...head.tokens, ...tail.tokens],
        token_logprobs: [...head.token_logprobs, ...tail.token_logprobs],
        top_logprobs: [...head.top_logprobs, ...tail.top_logprobs],
        text_offset: [...head.text_offset, ...tail.text_offset],
      };
      return { index: o.index, text: prompt.text + o.text, logprobs, finish_reason: o.result.finishReason };
    },
  };
}
