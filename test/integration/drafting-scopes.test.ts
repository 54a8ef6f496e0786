import { describe, expect, it } from 'vitest';
import { DraftingState } from '../../src/engine/drafting.js';
import type { WorkerJob } from '../../src/engine/protocol.js';
import type { EngineOptions } from '../../src/engine/types.js';
import { SYNTHETIC_MODEL } from '../../src/model/load.js';
import type { ModelInfo } from '../../src/model/types.js';

/**
 * The worker's lookahead state across requests: a conversation drafts from its earlier turns' documents; another
 * session of the same tenant, and the same session id under another tenant, do not.
 */
const info: ModelInfo = { id: 'm', contextLength: 1024, vocabSize: 5000, bosTokenId: null, eosTokenIds: [0], treeMask: true, executionProvider: 'cpu', kvPlacement: 'host', kvBytesPerToken: 1024, maxBatch: 1 };
const options: EngineOptions = {
  model: SYNTHETIC_MODEL,
  cacheDir: '/nonexistent',
  threads: 1,
  executionProvider: 'cpu',
  dtype: 'fp32',
  lookahead: { enabled: true, decodingLength: 16, branchLength: 8, layout: 'hier' },
  maxQueued: 1,
  maxRunning: 1,
  maxBatchTokens: 256,
  kvBudgetBytes: 2 ** 30,
  prefixCacheBytes: 0,
  sessions: { max: 10, ttlSeconds: 60, maxPerTenant: 10 },
  globalTrie: { maxNodes: 100_000, snapshotPath: null, maxTenants: 16 },
  watchdogMs: 60_000,
  corpus: null,
};

/** A document of distinct tokens no other request contains. */
const DOCUMENT = Array.from({ length: 40 }, (_, i) => 1000 + i * 7);
let nextId = 1;

function job(tenant: string, sessionId: string | null, promptIds: number[]): WorkerJob {
  const jobId = nextId++;
  return {
    jobId,
    group: jobId,
    promptIds,
    maxTokens: 32,
    sampling: { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, seed: 0 },
    logprobs: null,
    lookahead: options.lookahead,
    predictionIds: [],
    sessionId,
    tenant,
  };
}

/** The tokens drafted after a context that ends with the document's first two tokens. */
function draftedAfterDocumentStart(state: DraftingState, spec: WorkerJob): number[] {
  const drafts = state.start(spec)!;
  const context = Int32Array.from([...spec.promptIds, DOCUMENT[0], DOCUMENT[1]]);
  const tree = drafts.source.propose(context, context.length, 16, 8);
  state.finish(spec, new Int32Array(0), true);
  return Array.from(tree.tokens.subarray(1, tree.size));
}

describe('drafting scopes across requests', () => {
  const state = new DraftingState(options, info, [{ k: 1, ms: 1 }, { k: 16, ms: 1.5 }], 'fingerprint');
  // Turn 1 of session s1 (tenant a) carries the document in its prompt.
  const turn1 = job('a', 's1', [5, 6, ...DOCUMENT, 7, 8]);
  state.start(turn1);
  state.finish(turn1, Int32Array.from([9, 10, 11, 12]), false);
  const unrelatedPrompt = [20, 21, 22, 23];

  it('a later turn of the same session drafts the document from its earlier turn', () => {
    const drafted = draftedAfterDocumentStart(state, job('a', 's1', unrelatedPrompt));
    expect(drafted.slice(0, 6)).toEqual(DOCUMENT.slice(2, 8));
  });

  it('another session of the same tenant does not', () => {
    const drafted = draftedAfterDocumentStart(state, job('a', 's2', unrelatedPrompt));
    expect(drafted.filter((t) => DOCUMENT.includes(t))).toEqual([]);
  });

  it('the same session id under another tenant does not', () => {
    const drafted = draftedAfterDocumentStart(state, job('b', 's1', unrelatedPrompt));
    expect(drafted.filter((t) => DOCUMENT.includes(t))).toEqual([]);
  });

  it('after the session is dropped, its turns are gone', () => {
    state.dropSession('a', 's1');
    const drafted = draftedAfterDocumentStart(state, job('a', 's1', unrelatedPrompt));
    expect(drafted.filter((t) => DOCUMENT.includes(t))).toEqual([]);
  });

  it('documents posted for a tenant are drafted from by that tenant only', () => {
    const doc = Int32Array.from(DOCUMENT);
    state.addDocumentSpan('c', doc, 0, 10, true);
    state.addDocumentSpan('c', doc, 10, doc.length, true);
    expect(draftedAfterDocumentStart(state, job('c', null, unrelatedPrompt)).slice(0, 6)).toEqual(DOCUMENT.slice(2, 8));
    expect(draftedAfterDocumentStart(state, job('d', null, unrelatedPrompt)).filter((t) => DOCUMENT.includes(t))).toEqual([]);
  });

  it("an answer of a job that did not draft still feeds its tenant's global trie", () => {
    const off = { ...job('e', null, [30, 31, 32]), lookahead: { ...options.lookahead, enabled: false } };
    expect(state.start(off)).toBeNull();
    state.finish(off, Int32Array.from(DOCUMENT), false);
    expect(draftedAfterDocumentStart(state, job('e', null, unrelatedPrompt)).slice(0, 6)).toEqual(DOCUMENT.slice(2, 8));
  });

  it("what the model said after a token, fed from a job's forward rows, drafts for later jobs of that tenant only", () => {
    // A forward's rows 4000 and 4001 (after 3999), and the model's two best ids after each.
    const feeder = job('f', null, [3998, 3999]);
    const { source } = state.start(feeder)!;
    source.recycle!(Int32Array.from([4000, 4001]), Int32Array.from([3999, 3998, 4000, 3999]), Int32Array.from([4001, 4005, 4002, 4006]), 2, 2);
    state.finish(feeder, new Int32Array(0), true);
    const draftAfter4000 = (tenant: string): number[] => {
      const spec = job(tenant, null, [3998, 3999]);
      const tree = state.start(spec)!.source.propose(Int32Array.from([3998, 3999, 4000]), 3, 16, 8);
      state.finish(spec, new Int32Array(0), true);
      return Array.from(tree.tokens.subarray(1, tree.size));
    };
    const drafted = draftAfter4000('f');
    expect(drafted.slice(0, 2)).toEqual([4001, 4002]);
    expect(drafted).toContain(4005);
    expect(draftAfter4000('g')).toEqual([]);
  });
});
