import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GREEDY } from '../../src/engine/collect.js';
import type { WorkerEngine } from '../../src/engine/index.js';
import type { JobSpec, LookaheadOptions } from '../../src/engine/types.js';
import { LOOKAHEAD_OFF, startEngine, type TestEngine } from '../helpers/engine.js';

/**
 * The prefix cache through the real engine: a prompt that starts as an earlier one of its tenant starts from a copy
 * of that job's K/V rows and prefills only the rest, and decodes exactly what an engine without the cache decodes.
 */
const ON: LookaheadOptions = { enabled: true, decodingLength: 16, branchLength: 8, layout: 'hier' };

describe('prefix cache', () => {
  let cached: TestEngine;
  let plain: TestEngine;
  let spec: Partial<JobSpec>;
  const encode = (text: string) => cached.engine.tokenizer(cached.modelId).encode(text, { addSpecialTokens: false });

  beforeAll(async () => {
    [cached, plain] = await Promise.all([startEngine([]), startEngine(['--prefix-cache-mb', '0'])]);
    // Jobs run their full length: the synthetic model's noise could end one at an EOS after a few tokens.
    const eos = (cached.engine as WorkerEngine).info.eosTokenIds;
    spec = { maxTokens: 24, sampling: { ...GREEDY, logitBias: Object.fromEntries(eos.map((id) => [id, -100])) } };
  }, 120_000);
  afterAll(async () => {
    await cached?.close();
    await plain?.close();
  });

  for (const lookahead of [LOOKAHEAD_OFF, ON]) {
    it(`the turns of a chat and prompts sharing a system prompt decode as without the cache (lookahead ${lookahead.enabled ? 'on' : 'off'})`, async () => {
      const tenant = `chat-${lookahead.enabled}`;
      const system = encode('You are a careful assistant who answers briefly and cites the context given. ');
      const prompts: number[][] = [];
      // Three turns of one chat: each prompt is the last one, its answer and a new question.
      let chat = [...system, ...encode('Q: what is a river?')];
      const cachedTokens: number[] = [];
      for (let turn = 0; turn < 3; turn++) {
        prompts.push(chat);
        const a = await cached.run(chat, { ...spec, lookahead, tenant });
        const b = await plain.run(chat, { ...spec, lookahead, tenant });
        expect(a.ids, `turn ${turn}`).toEqual(b.ids);
        expect(b.result.lookahead.cachedTokens).toBe(0);
        cachedTokens.push(a.result.lookahead.cachedTokens);
        chat = [...chat, ...a.ids, ...encode(` Q: and turn ${turn + 2}?`)];
      }
      // The first turn had nothing to start from (this tenant is new); each later one starts from all of the
      // previous prompt and its answer but the last answer token, whose row no forward computed.
      expect(cachedTokens[0]).toBe(0);
      for (let turn = 1; turn < 3; turn++) expect(cachedTokens[turn]).toBe(prompts[turn - 1].length + spec.maxTokens! - 1);
      // Another question after the same system prompt starts from the system prompt's rows.
      const other = [...system, ...encode('Q: why is the sky blue?')];
      const a = await cached.run(other, { ...spec, lookahead, tenant });
      expect(a.ids).toEqual((await plain.run(other, { ...spec, lookahead, tenant })).ids);
      expect(a.result.lookahead.cachedTokens).toBeGreaterThanOrEqual(system.length);
      expect(a.result.lookahead.cachedTokens).toBeLessThan(other.length);
    }, 120_000);
  }

  it('a prompt equal to a cached sequence still prefills its last token, which gives the first token', async () => {
    const prompt = encode('Repeat after me: the same prompt twice, word for word.');
    const first = await cached.run(prompt, { ...spec, tenant: 'twice' });
    const again = await cached.run(prompt, { ...spec, tenant: 'twice' });
    expect(again.ids).toEqual(first.ids);
    expect(again.result.lookahead.cachedTokens).toBe(prompt.length - 1);
    expect(again.result.lookahead.prefillForwards).toBe(1);
  }, 60_000);

  it("a tenant never starts from another tenant's rows", async () => {
    const prompt = encode('A private document only tenant A has sent so far, long enough to be cached.');
    await cached.run(prompt, { ...spec, tenant: 'a' });
    const b = await cached.run(prompt, { ...spec, tenant: 'b' });
    expect(b.result.lookahead.cachedTokens).toBe(0);
    const a = await cached.run(prompt, { ...spec, tenant: 'a' });
    expect(a.result.lookahead.cachedTokens).toBe(prompt.length - 1);
    expect(a.ids).toEqual(b.ids);
  }, 60_000);
});
