import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation, type DraftSource, type DraftSizer } from '../../src/engine/generation.js';
import type { WorkerJob } from '../../src/engine/protocol.js';
import { Proposer, RecycledTable, RequestScope } from '../../src/lookahead/index.js';
import { ensureBuilt } from '../../src/model/builder/cache.js';
import { DEFAULT_BUILD_OPTIONS } from '../../src/model/builder/options.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { LoadedModel } from '../../src/model/types.js';

/**
 * Sampling with lookahead must draw from exactly the distribution plain sampling draws from. The decode loop
 * runs in-process here (the same Generation the worker runs) on a synthetic model with a 6-token vocabulary.
 */
const VOCAB = 6;
const NEW_TOKENS = 3;
const SAMPLES = 3000;
const PROMPT = [1, 3, 4, 3, 4, 3];
/** The model's greedy continuation of the prompt (set in beforeAll): the likeliest path, a useful draft. */
let prediction: number[] = [];

/** Always drafts as wide as allowed, so every step goes through tree verification. */
const alwaysWide: DraftSizer = { seat: () => {}, next: () => 6, observe: () => {} };

function job(seed: number, lookahead: boolean): WorkerJob {
  return {
    jobId: seed,
    group: seed,
    promptIds: PROMPT,
    maxTokens: NEW_TOKENS,
    sampling: { temperature: 0.6, topP: 0.95, topK: 0, repetitionPenalty: 1.1, seed },
    logprobs: null,
    lookahead: { enabled: lookahead, decodingLength: 6, branchLength: 3, layout: 'hier' },
    predictionIds: lookahead ? prediction : [],
    sessionId: null,
    tenant: 'default',
  };
}

/** The request's scope and the model's own rankings, read from the logits rows as the sampled steps compute them. */
function drafts(spec: WorkerJob): DraftSource {
  const scope = new RequestScope({ gramLength: 4, eosIds: [] }, spec.promptIds, spec.predictionIds);
  const table = new RecycledTable(VOCAB);
  const proposer = new Proposer({ request: scope.trie, recycled: table, tag: spec.jobId }, 6);
  return {
    propose: (context, length, maxNodes, maxDepth) =>
      proposer.propose(context, { decodingLength: maxNodes, branchLength: maxDepth, layout: 'hier' }, false, length),
    accepted: (tokens) => {
      proposer.accepted(tokens);
      scope.pushOutput(tokens);
    },
    recycle: (tokens, before, top, rows, k) => {
      for (let r = 0; r < rows; r++) table.record(tokens[r], top, r * k, k, before[2 * r], before[2 * r + 1], spec.jobId);
    },
  };
}

/** One job alone, driven as the worker's loop drives each job: plan → forwardBatch → complete, until it ends. */
async function decodeAlone(model: LoadedModel, gen: Generation): Promise<number[]> {
  const out: number[] = [];
  while (!gen.finished) {
    const item = gen.plan(0, Number.MAX_SAFE_INTEGER);
    const [result] = await model.forwardBatch([item]);
    const step = gen.complete(result, 0, item.input.tokens.length, 1);
    if (step) out.push(...step.tokens);
  }
  return out;
}

async function sample(model: LoadedModel, seed: number, lookahead: boolean, sampling?: Partial<WorkerJob['sampling']>): Promise<{ key: string; accepted: number }> {
  const base = job(seed, lookahead);
  const spec = sampling ? { ...base, sampling: { ...base.sampling, ...sampling } } : base;
  const gen = new Generation(model, spec, lookahead ? drafts(spec) : null, lookahead ? alwaysWide : null);
  const out = await decodeAlone(model, gen);
  gen.dispose();
  return { key: out.join(','), accepted: gen.stats.acceptedTokens };
}

describe('sampling with lookahead is distribution-exact', () => {
  let model: LoadedModel;
  const cacheDir = mkdtempSync(join(tmpdir(), 'lookahead-sampling-'));

  beforeAll(async () => {
    const config = syntheticConfig({ hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: VOCAB, eosTokenIds: [], bosTokenId: null });
    model = await openBuiltModel(await ensureBuilt(new SyntheticSource(config, 7), DEFAULT_BUILD_OPTIONS, cacheDir, () => {}), { threads: 1 });
    const greedy = { ...job(0, false), maxTokens: 8, sampling: { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, seed: 0 } };
    const gen = new Generation(model, greedy, null, null);
    prediction = await decodeAlone(model, gen);
    gen.dispose();
  });
  afterAll(async () => {
    await model?.dispose();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('the same seed gives the same sample with lookahead on and off', async () => {
    let accepted = 0;
    for (let seed = 0; seed < 300; seed++) {
      const off = await sample(model, seed, false);
      const on = await sample(model, seed, true);
      expect(on.key, `seed ${seed}`).toBe(off.key);
      accepted += on.accepted;
    }
    expect(accepted).toBeGreaterThan(30);
  });

  it('with OpenAI presence/frequency penalties and logit_bias, greedy and sampled runs agree on and off', async () => {
    const adjustments = { presencePenalty: 0.4, frequencyPenalty: 0.7, logitBias: { 2: 1.5, 5: -3 } };
    let accepted = 0;
    let changed = 0;
    for (let seed = 0; seed < 200; seed++) {
      const temperature = seed % 2 === 0 ? 0 : 0.6;
      const sampling = { ...adjustments, temperature };
      const off = await sample(model, seed, false, sampling);
      const on = await sample(model, seed, true, sampling);
      expect(on.key, `seed ${seed}`).toBe(off.key);
      accepted += on.accepted;
      if (off.key !== (await sample(model, seed, false, { temperature })).key) changed++;
    }
    // Drafts come from the unadjusted greedy path, so fewer are accepted here; some must be, or nothing was verified.
    expect(accepted).toBeGreaterThan(4);
    // The adjustments do change outputs (else this test would prove nothing).
    expect(changed).toBeGreaterThan(20);
  });

  it(`${SAMPLES} samples on disjoint seeds: continuation frequencies match (chi-square)`, async () => {
    const counts = new Map<string, [number, number]>();
    let accepted = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const off = await sample(model, 10_000 + i, false);
      const on = await sample(model, 20_000 + i, true);
      accepted += on.accepted;
      // Bin by the first two tokens: 36 cells, well populated at this sample size.
      for (const [key, side] of [[off.key, 0], [on.key, 1]] as const) {
        const bin = key.split(',').slice(0, 2).join(',');
        const c = counts.get(bin) ?? [0, 0];
        c[side]++;
        counts.set(bin, c);
      }
    }
    console.log(`accepted draft tokens: ${accepted} over ${SAMPLES} samples`);
    expect(accepted).toBeGreaterThan(SAMPLES / 10);
    // Two-sample chi-square over bins with enough mass; rare bins are pooled.
    let chi2 = 0;
    let cells = 0;
    const pooled: [number, number] = [0, 0];
    for (const [a, b] of counts.values()) {
      if (a + b < 20) {
        pooled[0] += a;
        pooled[1] += b;
        continue;
      }
      chi2 += (a - b) ** 2 / (a + b);
      cells++;
    }
    if (pooled[0] + pooled[1] > 0) {
      chi2 += (pooled[0] - pooled[1]) ** 2 / (pooled[0] + pooled[1]);
      cells++;
    }
    expect(cells).toBeGreaterThan(5);
    // Critical value at p = 0.001 for df = cells - 1 (Wilson–Hilferty approximation).
    const df = cells - 1;
    const critical = df * (1 - 2 / (9 * df) + 3.09 * Math.sqrt(2 / (9 * df))) ** 3;
    expect(chi2).toBeLessThan(critical);
  });
});
