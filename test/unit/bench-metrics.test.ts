import { describe, expect, it } from 'vitest';
import { acceptanceByPosition, pairRatios, percentile, summarise, summariseRun, tokensPerStep, type RequestSample } from '../../bench/metrics.js';
import { parseRss } from '../../bench/rss.js';
import { SseParser } from '../../bench/sse.js';
import { isLoopback } from '../../bench/target.js';

function sample(over: Partial<RequestSample>): RequestSample {
  return {
    key: null,
    ok: true,
    errorType: null,
    errorMessage: null,
    startMs: 0,
    ttftMs: 10,
    e2eMs: 100,
    interChunkMs: [],
    promptTokens: 5,
    completionTokens: 10,
    text: '',
    finishReason: 'length',
    lookahead: null,
    acceptedPredictionTokens: null,
    rejectedPredictionTokens: null,
    ...over,
  };
}

describe('percentiles', () => {
  it('interpolates between closest ranks', () => {
    const xs = Float64Array.from([1, 2, 3, 4]);
    expect(percentile(xs, 0.5)).toBe(2.5);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile(xs, 1)).toBe(4);
    expect(percentile(Float64Array.from([0, 10]), 0.9)).toBeCloseTo(9);
  });

  it('summarises unsorted input and refuses empty sets', () => {
    const s = summarise([5, 1, 4, 2, 3])!;
    expect(s).toMatchObject({ mean: 3, p50: 3, min: 1, max: 5 });
    expect(s.p90).toBeCloseTo(4.6);
    expect(s.p99).toBeCloseTo(4.96);
    expect(summarise([])).toBeNull();
    expect(() => percentile(new Float64Array(0), 0.5)).toThrow(RangeError);
  });
});

describe('lookahead aggregates', () => {
  it('weights tokens per step by steps', () => {
    // 10 steps at 3 tok/step and 30 steps at 1 tok/step: 60 tokens over 40 steps.
    const blocks = [
      { steps: 10, draft_tokens: 0, accepted_tokens: 20, tokens_per_step: 3, draft_seconds: 0 },
      { steps: 30, draft_tokens: 0, accepted_tokens: 0, tokens_per_step: 1, draft_seconds: 0 },
    ];
    expect(tokensPerStep(blocks)).toBe(1.5);
    expect(tokensPerStep([])).toBeNull();
  });

  it('turns accepted counts by position into shares of steps', () => {
    const blocks = [
      { steps: 10, draft_tokens: 0, accepted_tokens: 0, tokens_per_step: 1, draft_seconds: 0, accepted_by_position: [8, 4] },
      { steps: 10, draft_tokens: 0, accepted_tokens: 0, tokens_per_step: 1, draft_seconds: 0, accepted_by_position: [2, 0, 1] },
    ];
    expect(acceptanceByPosition(blocks)).toEqual([0.5, 0.2, 0.05]);
    expect(acceptanceByPosition([{ steps: 1, draft_tokens: 0, accepted_tokens: 0, tokens_per_step: 1, draft_seconds: 0 }])).toBeNull();
  });
});

describe('summariseRun', () => {
  it('counts tokens, errors and rates over the wall time', () => {
    const samples = [
      sample({ completionTokens: 10, e2eMs: 1000, ttftMs: 100, interChunkMs: [100, 100] }),
      sample({ completionTokens: 30, e2eMs: 2000, ttftMs: 300 }),
      sample({ ok: false, errorType: 'http_500', completionTokens: 0 }),
      sample({ ok: false, errorType: 'http_500', completionTokens: 0 }),
    ];
    const s = summariseRun(samples, 2);
    expect(s.requests).toBe(4);
    expect(s.completed).toBe(2);
    expect(s.errors).toEqual({ http_500: 2 });
    expect(s.generatedTokens).toBe(40);
    expect(s.tokensPerSecond).toBe(20);
    expect(s.requestsPerSecond).toBe(1);
    expect(s.promptTokens).toBe(10);
    expect(s.tokensPerSecondPerRequest!.p50).toBe(12.5);
    expect(s.ttftMs!.p50).toBe(200);
    // (1000-100)/9 = 100 and (2000-300)/29 ≈ 58.6
    expect(s.tpotMs!.max).toBe(100);
    expect(s.interChunkMs!.mean).toBe(100);
    expect(s.tokensPerStep).toBeNull();
  });
});

describe('pairRatios', () => {
  const run = (label: string, concurrency: number, tps: number, p50: number, tokensPerStep: number | null) => ({
    label,
    concurrency,
    summary: { ...summariseRun([sample({ e2eMs: p50 })], 1), tokensPerSecond: tps, tokensPerStep },
  });

  it('pairs each arm with the baseline at the same concurrency only', () => {
    const ratios = pairRatios([run('off', 1, 10, 200, 1), run('hier', 1, 25, 100, 2.5), run('off', 4, 40, 400, 1), run('hier', 4, 60, 300, 2), run('par', 16, 99, 1, 3)]);
    expect(ratios).toHaveLength(2);
    expect(ratios[0]).toMatchObject({ label: 'hier', baseline: 'off', concurrency: 1, tokensPerSecond: 2.5, tokensPerStep: 2.5, latencyP50: 0.5 });
    expect(ratios[1]).toMatchObject({ concurrency: 4, tokensPerSecond: 1.5, latencyP50: 0.75 });
  });

  it('gives null, not a number, when a side is missing or zero', () => {
    const [r] = pairRatios([run('off', 1, 0, 100, null), run('hier', 1, 5, 100, null)]);
    expect(r.tokensPerSecond).toBeNull();
    expect(r.tokensPerStep).toBeNull();
  });
});

describe('SseParser', () => {
  it('reassembles events split across chunks, CRLF and multi-byte characters', () => {
    const bytes = new TextEncoder().encode('data: {"a":"é"}\r\n\r\ndata: [DONE]\n\n');
    const p = new SseParser();
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) out.push(...p.push(bytes.subarray(i, i + 3)));
    out.push(...p.end());
    expect(out).toEqual(['{"a":"é"}', '[DONE]']);
  });

  it('ignores comments and flushes an unterminated last event', () => {
    const p = new SseParser();
    const out = [...p.push(new TextEncoder().encode(': keep-alive\n\ndata: x')), ...p.end()];
    expect(out).toEqual(['x']);
  });
});

describe('small parsers', () => {
  it('reads RSS from Prometheus text', () => {
    expect(parseRss('# HELP x\nprocess_resident_memory_bytes 12345\n')).toBe(12345);
    expect(parseRss('process_resident_memory_bytes{pid="1"} 1.5e6')).toBe(1.5e6);
    expect(parseRss('other 1')).toBeNull();
  });

  it('accepts only loopback hosts', () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('localhost')).toBe(true);
    expect(isLoopback('[::1]')).toBe(true);
    expect(isLoopback('10.0.0.1')).toBe(false);
    expect(isLoopback('example.com')).toBe(false);
  });
});
