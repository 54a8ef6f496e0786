import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderDeviceCheck, runDeviceCheck } from '../../bench/device-check.js';
import { CHAT_MODEL, SHARED } from '../helpers/engine.js';

/** The device check's short variant on the CPU EP: the same code a GPU machine runs, end to end. */
const haveModel = existsSync(CHAT_MODEL);
if (!haveModel) console.warn(`SKIPPED device-check test: ${SHARED} is absent`);

describe.skipIf(!haveModel)('bench device-check (cpu, short)', () => {
  it('reports EPs, agreement, forward cost and decode rates', async () => {
    const r = await runDeviceCheck({
      models: [CHAT_MODEL],
      executionProviders: ['cpu'],
      prompts: ['Tell me a short story about a lighthouse keeper.'],
      longPrompts: [],
      maxTokens: 12,
      ks: [1, 4],
      rounds: 1,
      threads: 1,
      log: () => {},
    });
    expect(r.providers.map((p) => p.ep)).toEqual(['cpu', 'webgpu', 'cuda']);
    expect(r.providers[0].available).toBe(true);
    // No CUDA libraries on these machines: reported, not thrown.
    expect(r.providers[2]).toMatchObject({ available: false });
    expect(r.checks).toHaveLength(1);
    const c = r.checks[0];
    expect(c).toMatchObject({ model: 'chat-llama-5m', ep: 'cpu', kvPlacement: 'host', transfers: null, offProvider: null });
    expect(c.agreement.identical).toBe(c.agreement.tokens);
    expect(c.agreement.tokens).toBeGreaterThan(0);
    expect(c.forwardMs.map((p) => p.k)).toEqual([1, 4]);
    expect(c.forwardMs.every((p) => p.ms > 0)).toBe(true);
    expect(c.decode.offTokensPerSecond).toBeGreaterThan(0);
    expect(c.decode.hierTokensPerSecond).toBeGreaterThan(0);
    const md = renderDeviceCheck(r);
    expect(md).toMatch(/\| cuda \| no \|/);
    expect(md).toMatch(/## chat-llama-5m on cpu/);
  });
});
