import type { Context } from 'hono';
import { InvalidRequestError, NotFoundError } from '../../errors.js';
import type { EmbeddingInput } from '../../model/embedding/index.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { withoutOurKey } from '../passthrough.js';
import { readJson, tenantOf } from '../request.js';
import { embeddingRequestSchema } from '../schemas.js';

/**
 * /v1/embeddings: the local embedding model (--embedding-model) when the request names it, else the upstream as
 * chat goes there (same credentials, errors and timeouts), else a 404 that says how to get either. With
 * --learn-from-embeddings, the texts embedded go into the tenant's global trie as posted documents would, after the
 * answer and never holding it.
 */
export function embeddings(deps: ServerDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const { text, body: raw } = await readJson(c);
    const model = typeof raw.model === 'string' ? raw.model : '';
    const embedder = deps.embedder;
    if (!embedder || model !== embedder.id) {
      if (!model) embeddingRequestSchema.parse(raw);
      if (!deps.upstream) throw noEmbeddingModel(model, embedder?.id);
      const res = await deps.upstream.forward(withoutOurKey(deps, c.req.raw), 'embeddings', text);
      if (res.ok) learn(deps, tenantOf(c), textsOf(raw.input));
      return res;
    }
    const body = embeddingRequestSchema.parse(raw);
    const dim = embedder.info.dimensions;
    if (body.dimensions != null && body.dimensions !== dim) {
      throw new InvalidRequestError(`${embedder.id} gives ${dim}-dimensional embeddings only; it was not trained to be shortened, so dimensions can only be ${dim}`, 'dimensions');
    }
    const inputs = inputsOf(body.input);
    const { vectors, tokens } = await embedder.embed(inputs);
    learn(deps, tenantOf(c), textsOf(body.input));
    const base64 = body.encoding_format === 'base64';
    const data = inputs.map((_, index) => {
      const vector = vectors.subarray(index * dim, (index + 1) * dim);
      // Little-endian float32 bytes, as OpenAI sends them (the SDKs decode with a Float32Array view).
      const embedding = base64 ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64') : Array.from(vector);
      return { object: 'embedding', index, embedding };
    });
    return c.json({ object: 'list', data, model: embedder.id, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  };
}

function noEmbeddingModel(model: string, local: string | undefined): NotFoundError {
  const served = local ? `this server embeds with \`${local}\` only` : 'this server has no embedding model';
  return new NotFoundError(
    `The embedding model \`${model.slice(0, 200)}\` is not served here (${served}). Start it with --embedding-model PATH to serve a local ` +
      'sentence-embedding model, or with --upstream URL to forward embeddings to a server that has it.',
    'model_not_found',
  );
}

function inputsOf(input: ReturnType<typeof embeddingRequestSchema.parse>['input']): EmbeddingInput[] {
  if (typeof input === 'string') return [input];
  return typeof input[0] === 'number' ? [input as number[]] : (input as EmbeddingInput[]);
}

/** The texts of an input, whatever its shape (token ids teach nothing: they may be another tokenizer's). */
function textsOf(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  return Array.isArray(input) ? input.filter((t): t is string => typeof t === 'string') : [];
}

/**
 * Feeds the texts to the tenant's global trie through the documents' path: the same quota (a tenant over it simply
 * teaches nothing this time) and the same sliced ingestion. Runs after the answer is decided and is not awaited.
 */
function learn(deps: ServerDeps, tenant: string, texts: string[]): void {
  if (!deps.config.embedding.learn || texts.length === 0) return;
  try {
    deps.documentQuota.take(tenant, texts.reduce((n, t) => n + Buffer.byteLength(t), 0));
  } catch (err) {
    deps.log.debug({ tenant, err: (err as Error).message }, 'embedded texts not learnt');
    return;
  }
  deps.engine.addDocuments(tenant, texts).catch((err: Error) => deps.log.warn({ tenant, err: err.message }, 'learning from embedded texts failed'));
}
