import { Hono } from 'hono';
import { InvalidRequestError } from '../../errors.js';
import { requireAdmin, tenantNames } from '../auth.js';
import type { AppEnv, ServerDeps } from '../deps.js';
import { readJson, tenantOf } from '../request.js';
import { documentsRequestSchema } from '../schemas.js';

/**
 * The lookahead-specific surface: feed the global trie, read counters, forget a conversation. A tenant key feeds
 * and forgets only within its own tenant; feeding another tenant (`tenant` in the body) and reading the
 * server-wide counters need the admin key.
 */
export function lookaheadRoutes(deps: ServerDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const tenants = tenantNames(deps.config.auth);

  app.post('/v1/lookahead/documents', async (c) => {
    const body = documentsRequestSchema.parse((await readJson(c)).body);
    const own = tenantOf(c);
    if (body.tenant !== undefined && body.tenant !== own) {
      requireAdmin(c.get('caller'), "Feeding another tenant's documents");
      // Tenants come from the key map: an invented name would only grow memory (and with auth off anyone is admin).
      if (!tenants.has(body.tenant)) throw new InvalidRequestError(`Unknown tenant '${body.tenant.slice(0, 128)}': tenants are the ones named in auth.apiKeys.`, 'tenant', 'unknown_tenant');
    }
    const tenant = body.tenant ?? own;
    const texts = body.documents.map((d) => (typeof d === 'string' ? d : d.text));
    deps.documentQuota.take(tenant, texts.reduce((n, t) => n + Buffer.byteLength(t), 0));
    const tokens = await deps.engine.addDocuments(tenant, texts);
    return c.json({ object: 'lookahead.documents', tenant, documents: texts.length, tokens });
  });

  app.get('/v1/lookahead/stats', (c) => {
    requireAdmin(c.get('caller'), 'Reading the server-wide lookahead statistics');
    const s = deps.engine.stats();
    return c.json({
      object: 'lookahead.stats',
      running: s.running,
      queued: s.queued,
      state: s.state,
      restarts: s.restarts,
      trie_nodes: s.trieNodes,
      tenants: s.tenants,
      sessions: s.sessions,
      evicted_tenants: s.evictedTenants,
      totals: {
        jobs: s.totals.jobs,
        steps: s.totals.steps,
        draft_tokens: s.totals.draftTokens,
        accepted_tokens: s.totals.acceptedTokens,
        generated_tokens: s.totals.generatedTokens,
      },
    });
  });

  app.delete('/v1/lookahead/sessions/:id', async (c) => {
    const id = c.req.param('id');
    // Redis first: if it cannot be reached the delete fails whole (503), rather than leave turns others re-learn.
    const shared = (await deps.replication?.dropSession(tenantOf(c), id)) ?? false;
    const deleted = (await deps.engine.dropSession(tenantOf(c), id)) || shared;
    return c.json({ id, object: 'lookahead.session', deleted });
  });

  return app;
}
