import { describe, expect, it } from 'vitest';
import { abSection, decodeTokensPerSecond } from '../../bench/ab.js';
import type { RequestSample } from '../../bench/metrics.js';
import { abbaOrder, bootstrapRatio, overlaps, perPromptRatios } from '../../bench/paired.js';
import { summariseRun } from '../../bench/metrics.js';
import { machineInfo, toReportRun } from '../../bench/report/build.js';
import { renderHtml } from '../../bench/report/html.js';
import { renderMarkdown } from '../../bench/report/markdown.js';
import { REPORT_SCHEMA_VERSION, reportSchema, type Report } from '../../bench/report/schema.js';
import { renderTable } from '../../bench/table.js';

describe('pairing', () => {
  it('pairs by prompt key, in the baseline order, and leaves out prompts one arm lacks or cannot time', () => {
    const base = new Map([['a', 10], ['b', 20], ['c', 5], ['d', 8]]);
    const arm = new Map([['b', 40], ['a', 15], ['d', 0], ['e', 99]]);
    expect(Array.from(perPromptRatios(base, arm))).toEqual([1.5, 2]);
  });

  it('orders two arms ABBA so neither is always first', () => {
    const orders = Array.from({ length: 8 }, (_, i) => abbaOrder(['A', 'B'], i).join(''));
    expect(orders).toEqual(['AB', 'BA', 'BA', 'AB', 'AB', 'BA', 'BA', 'AB']);
    expect(orders.filter((o) => o[0] === 'A')).toHaveLength(4);
  });
});

describe('bootstrap of a paired ratio', () => {
  it('is the geometric mean, ×2 and ×0.5 averaging to ×1', () => {
    const r = bootstrapRatio([2, 0.5], { seed: 1 })!;
    expect(r.n).toBe(2);
    expect(r.estimate).toBeCloseTo(1, 12);
    expect(r.low).toBeCloseTo(0.5, 12);
    expect(r.high).toBeCloseTo(2, 12);
  });

  it('collapses on identical ratios and is null without pairs', () => {
    expect(bootstrapRatio([1.5, 1.5, 1.5], { seed: 3 })).toEqual({ n: 3, estimate: 1.5, low: 1.5, high: 1.5 });
    expect(bootstrapRatio([], { seed: 3 })).toBeNull();
  });

  it('is reproducible from its seed, brackets the estimate, and narrows with more prompts', () => {
    const noisy = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 1.6 * Math.exp(0.3 * Math.sin(i * 12.9898 + seed)));
    const a = bootstrapRatio(noisy(12, 0), { seed: 7 })!;
    expect(bootstrapRatio(noisy(12, 0), { seed: 7 })).toEqual(a);
    expect(bootstrapRatio(noisy(12, 0), { seed: 8 })).not.toEqual(a);
    expect(a.low).toBeLessThan(a.estimate);
    expect(a.high).toBeGreaterThan(a.estimate);
    const wide = bootstrapRatio(noisy(200, 0), { seed: 7 })!;
    expect(wide.high / wide.low).toBeLessThan(a.high / a.low);
    // A 95 % interval leaves about 2.5 % of resampled means on each side: a 50 % one is much narrower.
    const half = bootstrapRatio(noisy(12, 0), { seed: 7, level: 0.5 })!;
    expect(half.high - half.low).toBeLessThan((a.high - a.low) / 2);
  });

  it('two measurements of one speed-up overlap; a clearly different one does not', () => {
    const x = bootstrapRatio([1.9, 2.1, 2.0, 1.8, 2.2, 2.05], { seed: 1 })!;
    const y = bootstrapRatio([2.0, 1.95, 2.1, 1.85, 2.15, 2.0], { seed: 2 })!;
    const z = bootstrapRatio([1.0, 1.05, 0.95, 1.02, 0.98, 1.0], { seed: 3 })!;
    expect(overlaps(x, y)).toBe(true);
    expect(overlaps(x, z)).toBe(false);
    expect(overlaps(z, x)).toBe(false);
  });
});

function sample(key: string, tokens: number, ttftMs: number, e2eMs: number, tokensPerStep: number, text = 'same'): RequestSample {
  return {
    key, ok: true, errorType: null, errorMessage: null, startMs: 0, ttftMs, e2eMs, interChunkMs: [], promptTokens: 10, completionTokens: tokens, text,
    finishReason: 'length', acceptedPredictionTokens: null, rejectedPredictionTokens: null,
    lookahead: { steps: Math.ceil(tokens / tokensPerStep), draft_tokens: 0, accepted_tokens: 0, tokens_per_step: tokensPerStep, draft_seconds: 0, draft_sizes: { [String(tokensPerStep > 1 ? 8 : 1)]: 3 }, forward_seconds: 0.03, decode_seconds: 0.09 },
  };
}

describe('the ab section', () => {
  it('pairs each arm with the baseline at the same level, prompt by prompt, and scales each arm against 1 client', () => {
    // Decode time excludes TTFT: 11 tokens after the first in 100 ms (off) vs 50 ms (hier) → ×2 on every prompt.
    const off1 = [sample('p#0', 11, 40, 140, 1), sample('q#0', 11, 400, 500, 1)];
    const hier1 = [sample('q#0', 11, 10, 60, 3), sample('p#0', 11, 90, 140, 3, 'different')];
    const off4 = [sample('p#0', 11, 40, 240, 1), sample('q#0', 11, 40, 240, 1)];
    const hier4 = [sample('p#0', 11, 40, 140, 2), sample('q#0', 11, 40, 190, 2)];
    const runs = [
      { label: 'off', concurrency: 1, samples: off1 },
      { label: 'hier', concurrency: 1, samples: hier1 },
      { label: 'off', concurrency: 4, samples: off4 },
      { label: 'hier', concurrency: 4, samples: hier4 },
    ];
    const labelled = runs.map((r, i) => ({ label: r.label, concurrency: r.concurrency, summary: summariseRun(r.samples, [1, 0.5, 0.8, 0.4][i]) }));
    const ab = abSection({ seed: 1, arms: [{ label: 'off', lookahead: { enabled: false } }, { label: 'hier', lookahead: { enabled: true } }] }, runs, labelled, 4);
    expect(ab.prompts).toBe(2);
    expect(ab.paired.map((p) => [p.label, p.concurrency, p.identical_outputs, p.compared_outputs])).toEqual([['hier', 1, 1, 2], ['hier', 4, 2, 2]]);
    const at1 = ab.paired[0];
    expect(at1.decode_tokens_per_second).toMatchObject({ n: 2, low: 2, high: 2 });
    expect(at1.decode_tokens_per_second!.estimate).toBeCloseTo(2, 12);
    expect(at1.tpot!.estimate).toBeCloseTo(0.5, 12);
    expect(at1.tokens_per_step!.estimate).toBeCloseTo(3, 12);
    // At 4 clients: ×2 on p, ×(200/150) on q.
    expect(ab.paired[1].decode_tokens_per_second!.estimate).toBeCloseTo(Math.sqrt(2 * (200 / 150)), 12);
    expect(ab.scaling.find((s) => s.label === 'hier' && s.concurrency === 4)!.vs_one_client).toBeCloseTo(22 / 0.4 / (22 / 0.5), 12);
    // Aggregate decode: 4 streams at the pooled rate (20 tokens after the first in 100 + 150 ms) against 1 stream
    // at its own (20 in 50 + 50 ms); prefill is left out.
    const hier4Scaling = ab.scaling.find((s) => s.label === 'hier' && s.concurrency === 4)!;
    expect(hier4Scaling.decode_tokens_per_second).toBeCloseTo((4 * 20) / 0.25, 9);
    expect(hier4Scaling.decode_vs_one_client).toBeCloseTo((4 * 20) / 0.25 / (20 / 0.1), 9);
    expect(labelled[1].summary.draftSizes).toEqual({ 8: 6 });
    expect(labelled[1].summary.forwardMsPerStep).toBeCloseTo((0.06 / 8) * 1000, 12);

    const report: Report = {
      schema_version: REPORT_SCHEMA_VERSION, kind: 'ab', created_at: new Date(0).toISOString(), command: 'npm run bench -- ab <test>', machine: machineInfo(),
      model: { id: 'm', path: null },
      config: {
        base_url: null, server: 'spawned', workload: { path: 'w.jsonl', shape: 'plain', items: 2, warmup_items: 4, warmup_applied: true, reused_items: false },
        requests: 2, duration_s: null, max_tokens: 11, concurrency: [1, 4], rounds: 1, labels: ['off', 'hier'],
      },
      runs: labelled.map((r) => toReportRun({ label: r.label, concurrency: r.concurrency, requestsPerSecondTarget: null, lookahead: null, rss: null }, r.summary)),
      ratios: [], forward_cost: null, peer: null, ab, server_stats: null,
    };
    expect(reportSchema.safeParse(report).success).toBe(true);
    const md = renderMarkdown(report);
    expect(md).toContain('| hier | 1 | 2.00 [2.00, 2.00] | 0.50 [0.50, 0.50] | 3.00 [3.00, 3.00] | 1/2 |');
    expect(md).toMatch(/\| hier \| 1 \| 44\.0 \| 1\.00 \| 200\.0 \| 1\.00 \| 50 \| [0-9.]+ \| [0-9.]+ \| 7\.5 \| 8×6 \|/);
    expect(renderHtml(report)).toContain('Paired decode speed-up vs off (95 % CI)');
    const table = renderTable([report, { ...report, model: { id: 'wide', path: null } }], 'npm run bench -- table');
    expect(table.split('\n').filter((l) => /^\| (m|wide) \|/.test(l))).toHaveLength(4);
    expect(table).toContain('| m | 1 | 22.0 | 44.0 | 2.00 [2.00, 2.00] | 3.00 | 1.00 | 1.00 | 100.0 (×1.00) / 200.0 (×1.00) | 220 / 50 | 8×6 |');
    expect(table).toContain('2 held-out prompts after 4 warm-up items per tenant');
  });

  it('decode tokens/s leaves the prefill (TTFT) out and needs two tokens', () => {
    expect(decodeTokensPerSecond(sample('k', 11, 500, 600, 1))).toBeCloseTo(100, 12);
    expect(decodeTokensPerSecond(sample('k', 1, 500, 600, 1))).toBeNull();
    expect(decodeTokensPerSecond({ ...sample('k', 11, 500, 600, 1), ok: false })).toBeNull();
  });
});
