import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, ContextLengthError, fromWire, toWire } from '../../src/errors.js';
import { collectJob, GREEDY } from '../../src/engine/collect.js';
import { mapError } from '../../src/server/errors.js';
import type { LookaheadOptions } from '../../src/engine/types.js';
import { LOOKAHEAD_OFF, startEngine, type TestEngine } from '../helpers/engine.js';

const ON: LookaheadOptions = { enabled: true, decodingLength: 16, branchLength: 12, layout: 'hier' };

/** Inputs that used to kill the engine's worker, and what crosses its boundary. */
let engine: TestEngine;
beforeAll(async () => {
  // A node budget too small for the n-gram length used to throw in the worker at the first session's end.
  engine = await startEngine(['--context-length', '64', '--trie-max-nodes', '100']);
});
afterAll(async () => {
  await engine?.close();
});

describe('engine robustness', () => {
  it('a tiny --trie-max-nodes with sessions serves, and the worker never restarts', async () => {
    const prompt = [40, 41, 42, 43, 44, 45];
    const first = await engine.run(prompt, { maxTokens: 8, sessionId: 's1' });
    const second = await engine.run(prompt, { maxTokens: 8, sessionId: 's1' });
    expect(second.ids).toEqual(first.ids);
    expect(engine.engine.stats().restarts).toBe(0);
    expect(engine.engine.stats().state).toBe('ready');
  });

  it('a request trie too large to build at once fills in slices while its n choices decode, losslessly', async () => {
    const prompt = [40, 41, 42, 43, 44, 45];
    const prediction = Array.from({ length: 6000 }, (_, i) => 50 + ((i * 13) % 200));
    const plain = await engine.run(prompt, { maxTokens: 8, lookahead: LOOKAHEAD_OFF });
    const first = engine.engine.submit(engine.modelId, { promptIds: prompt, maxTokens: 8, sampling: GREEDY, stop: [], logprobs: null, lookahead: ON, predictionIds: prediction });
    const second = engine.run(prompt, { maxTokens: 8, lookahead: ON, predictionIds: prediction, sharesDraftsWith: first });
    expect((await collectJob(first)).ids).toEqual(plain.ids);
    expect((await second).ids).toEqual(plain.ids);
    expect(engine.engine.stats().restarts).toBe(0);
  });

  it('dropping a session says whether there was one', async () => {
    await engine.run([40, 41, 42], { maxTokens: 2, sessionId: 'known' });
    expect(await engine.engine.dropSession('default', 'known')).toBe(true);
    expect(await engine.engine.dropSession('default', 'known')).toBe(false);
    expect(await engine.engine.dropSession('default', 'never-seen')).toBe(false);
  });

  it('typed errors keep status, type, code and param across the thread boundary', () => {
    const back = fromWire(structuredClone(toWire(new ContextLengthError('too long', 'prompt'))));
    expect(back).toBeInstanceOf(AppError);
    expect(back).toMatchObject({ name: 'ContextLengthError', message: 'too long', status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', param: 'prompt' });
    const plain = fromWire(structuredClone(toWire(new RangeError('internal'))));
    expect(plain).not.toBeInstanceOf(AppError);
    expect(plain.name).toBe('RangeError');
  });

  // Last: it closes the shared engine (afterAll's close is then a no-op).
  it('jobs cut off by shutdown, running or waiting, answer 503 with Retry-After, not 500', async () => {
    const { engine: shared, modelId } = engine;
    const spec = { promptIds: [40, 41, 42], maxTokens: 60, sampling: GREEDY, stop: [], logprobs: null, lookahead: LOOKAHEAD_OFF };
    // More jobs than run at once (16): some are cut off running, the rest waiting.
    const outcomes = Array.from({ length: 20 }, () => collectJob(shared.submit(modelId, spec)).then(() => null, (e: unknown) => e));
    await shared.close(0);
    const errors = await Promise.all(outcomes);
    expect(errors.filter((e) => e !== null)).toHaveLength(20);
    for (const error of errors) {
      const mapped = mapError(error, 'req_test');
      expect(mapped).toMatchObject({ status: 503, headers: { 'Retry-After': expect.any(String) }, internal: false });
      expect(mapped.body.error.code).toBe('service_unavailable');
    }
  });
});
