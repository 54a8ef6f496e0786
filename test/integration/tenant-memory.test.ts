import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../helpers/engine.js';

/**
 * Callers inventing tenant names and session ids must not grow memory without bound: the real engine (worker
 * thread, which shares this process's RSS) with at most MAX_TENANTS tenant tries and MAX_SESSIONS session tries
 * (SESSIONS_PER_TENANT each) gets 1,000 tenant names and 10,000 session ids. Before tenants were bounded and their
 * copy indexes lazy, each tenant cost ~4 MB even when empty (1,000 tenants: ~4 GB).
 */
const MAX_TENANTS = 64;
const MAX_SESSIONS = 1000;
const SESSIONS_PER_TENANT = 10;
const TENANTS = 1000;
const SESSION_IDS = 10_000;
/** The stated bound on RSS growth for all of it: tries at their caps are small for this short traffic. */
const RSS_BOUND_MB = 150;

let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine([
    '--context-length', '64', '--max-tenants', String(MAX_TENANTS), '--sessions-max', String(MAX_SESSIONS),
    '--sessions-per-tenant', String(SESSIONS_PER_TENANT), '--max-queued', '256', '--max-running', '8',
  ]);
});
afterAll(async () => {
  await engine?.close();
});

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

describe('bounded memory per tenant', () => {
  it(`${TENANTS} invented tenants and ${SESSION_IDS} session ids stay within ${MAX_TENANTS} tenant tries, ${MAX_SESSIONS} sessions and +${RSS_BOUND_MB} MB RSS`, async () => {
    const prompt = [40, 47, 54, 61];
    await engine.run(prompt, { maxTokens: 2, tenant: 'warm', sessionId: 'warm' });
    const before = rssMb();
    let peak = before;

    // Every tenant gets a document and jobs; each job is a new session id (10 per tenant).
    const started = performance.now();
    const BATCH = 16;
    for (let first = 0; first < TENANTS; first += BATCH) {
      const jobs: Promise<unknown>[] = [];
      for (let t = first; t < Math.min(TENANTS, first + BATCH); t++) {
        const tenant = `invented-${t}`;
        jobs.push(engine.engine.addDocuments(tenant, [`document of tenant ${t}: ${'lorem ipsum '.repeat(20)}`]));
        for (let s = 0; s < SESSION_IDS / TENANTS; s++) {
          jobs.push(engine.run([...prompt, t % 200, s], { maxTokens: 1, tenant, sessionId: `session-${t}-${s}` }));
        }
      }
      await Promise.all(jobs);
      if (first % 160 === 0) peak = Math.max(peak, rssMb());
    }
    peak = Math.max(peak, rssMb());
    const after = rssMb();
    const stats = engine.engine.stats();
    console.log(
      `tenant memory: ${TENANTS} tenants, ${SESSION_IDS} session ids in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
        `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MB (peak ${peak.toFixed(0)}); held ${stats.tenants} tenants ` +
        `(${stats.evictedTenants} evicted), ${stats.sessions} sessions`,
    );
    expect(stats.tenants).toBeLessThanOrEqual(MAX_TENANTS);
    expect(stats.evictedTenants).toBeGreaterThanOrEqual(TENANTS - MAX_TENANTS);
    expect(stats.sessions).toBeLessThanOrEqual(MAX_SESSIONS);
    expect(peak - before).toBeLessThan(RSS_BOUND_MB);
  }, 600_000);
});
