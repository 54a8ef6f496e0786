import { Hono } from 'hono';
import type { AppEnv, ServerDeps } from '../deps.js';
import { modelNotFound, withoutOurKey } from '../passthrough.js';
import type { ModelObject } from '../upstream.js';

const OWNER = 'lookahead-proxy';

export function modelRoutes(deps: ServerDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // The context window under both names clients read: LlamaIndex and LiteLLM `context_length`, vLLM's `max_model_len`.
  const entry = (id: string, created: number, context: number): ModelObject => ({ id, object: 'model', created, owned_by: OWNER, context_length: context, max_model_len: context });
  const local = (): ModelObject[] => {
    const list = deps.engine.models.map((m) => entry(m.id, m.created, m.contextLength));
    const embedder = deps.embedder;
    if (embedder) list.push(entry(embedder.id, embedder.created, embedder.info.maxTokens));
    return list;
  };

  app.get('/v1/models', async (c) => {
    const data = local();
    if (deps.upstream) {
      try {
        const seen = new Set(data.map((m) => m.id));
        for (const m of await deps.upstream.listModels(c.req.raw.signal)) if (!seen.has(m.id)) data.push(withBothLengths(m));
      } catch (err) {
        // An upstream that is down must not take the local models' listing down with it.
        deps.log.warn({ err: (err as Error).message }, 'upstream model list unavailable; listing local models only');
      }
    }
    return c.json({ object: 'list', data });
  });

  app.get('/v1/models/:id{.+}', async (c) => {
    const id = c.req.param('id');
    const found = local().find((m) => m.id === id);
    if (found) return c.json(found);
    if (deps.upstream) return deps.upstream.forward(withoutOurKey(deps, c.req.raw), `models/${encodeURIComponent(id)}`);
    throw modelNotFound(id);
  });

  return app;
}

/** An upstream that names its window one way (vLLM: max_model_len; LiteLLM, llama.cpp: context_length) names it both ways here. */
function withBothLengths(m: ModelObject): ModelObject {
  const length = m.context_length ?? m.max_model_len;
  return typeof length === 'number' ? { ...m, context_length: length, max_model_len: length } : m;
}
