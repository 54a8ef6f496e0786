import { Hono } from 'hono';
import { InvalidRequestError } from '../../errors.js';
import { chatPromptIds } from '../chat-prompt.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { modelNotFound } from '../passthrough.js';
import { literalBound } from '../response-format.js';
import { readJson } from '../request.js';
import { detokenizeRequestSchema, tokenizeChatSchema, tokenizePromptSchema } from '../schemas.js';
import { toolSetupOf } from '../tools/request.js';

/**
 * vLLM's /tokenize and /detokenize, so a client can count tokens (and learn the context window) with the model's
 * own tokenizer. Counts are those the generation routes put in `usage.prompt_tokens`: a prompt encodes as
 * completions encodes it, messages render as chat renders them.
 */
export function tokenizeRoutes(deps: ServerDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const modelOf = (requested: string | null | undefined) => {
    const model = requested ? deps.engine.models.find((m) => m.id === requested) : deps.engine.models[0];
    if (!model) throw modelNotFound(requested ?? '');
    return { model, tok: deps.engine.tokenizer(model.id) };
  };

  app.post('/tokenize', async (c) => {
    const raw = (await readJson(c)).body;
    const chat = raw.messages !== undefined ? tokenizeChatSchema.parse(raw) : null;
    const plain = chat ? null : tokenizePromptSchema.parse(raw);
    const { model, tok } = modelOf((chat ?? plain)!.model);
    const tokens = chat
      ? chatPromptIds(tok, chat, toolSetupOf(chat, 'chat', literalBound(deps.engine, model.id)), chat.add_special_tokens ?? undefined)
      : tok.encode(plain!.prompt, { addSpecialTokens: plain!.add_special_tokens ?? true });
    return c.json({ tokens, count: tokens.length, max_model_len: model.contextLength });
  });

  app.post('/detokenize', async (c) => {
    const body = detokenizeRequestSchema.parse((await readJson(c)).body);
    const { tok } = modelOf(body.model);
    const bad = body.tokens.findIndex((t) => t >= tok.vocabSize);
    if (bad >= 0) throw new InvalidRequestError(`token id ${body.tokens[bad]} is outside the vocabulary (size ${tok.vocabSize})`, `tokens[${bad}]`);
    return c.json({ prompt: tok.decode(body.tokens) });
  });

  return app;
}
