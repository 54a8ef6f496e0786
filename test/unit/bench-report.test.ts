import { describe, expect, it } from 'vitest';
import { pairRatios, summariseRun, type RequestSample } from '../../bench/metrics.js';
import { machineInfo, toReportRatio, toReportRun } from '../../bench/report/build.js';
import { renderHtml } from '../../bench/report/html.js';
import { renderMarkdown } from '../../bench/report/markdown.js';
import { REPORT_SCHEMA_VERSION, reportSchema, type Report } from '../../bench/report/schema.js';
import { renderSoak, rssSummary, type SoakResult } from '../../bench/soak.js';

function ok(tokens: number, e2eMs: number, tps: number | null): RequestSample {
  return {
    key: null, ok: true, errorType: null, errorMessage: null, startMs: 0, ttftMs: 20, e2eMs, interChunkMs: [5, 7], promptTokens: 4,
    completionTokens: tokens, text: 'x', finishReason: 'length',
    lookahead: tps === null ? null : { steps: 10, draft_tokens: 30, accepted_tokens: Math.round(10 * (tps - 1)), tokens_per_step: tps, draft_seconds: 0.01, accepted_by_position: [6, 3] },
    acceptedPredictionTokens: null, rejectedPredictionTokens: null,
  };
}

function report(): Report {
  const runs = [
    { label: 'off', concurrency: 1, summary: summariseRun([ok(20, 400, 1), ok(20, 500, 1)], 1) },
    { label: 'hier', concurrency: 1, summary: summariseRun([ok(20, 200, 2), ok(20, 250, 2)], 0.5) },
  ];
  return {
    schema_version: REPORT_SCHEMA_VERSION,
    kind: 'ab',
    created_at: new Date(0).toISOString(),
    command: 'npm run bench -- ab <test>',
    machine: machineInfo(),
    model: { id: 'm', path: null },
    config: {
      base_url: null, server: 'spawned',
      workload: { path: 'w.jsonl', shape: 'plain', items: 2, warmup_items: 0, warmup_applied: null, reused_items: false },
      requests: 2, duration_s: null, max_tokens: 20, concurrency: [1], rounds: 1, labels: ['off', 'hier'],
    },
    runs: runs.map((r) => toReportRun({ label: r.label, concurrency: r.concurrency, requestsPerSecondTarget: null, lookahead: { enabled: r.label !== 'off' }, rss: [{ t: 0, bytes: 1e8 }, { t: 1, bytes: 1.1e8 }] }, r.summary)),
    ratios: pairRatios(runs).map(toReportRatio),
    forward_cost: [{ k: 1, ms: 2 }, { k: 8, ms: 3 }],
    peer: null,
    ab: null,
    server_stats: null,
  };
}

describe('report', () => {
  it('validates against the versioned schema, and rejects drift', () => {
    const r = report();
    expect(reportSchema.safeParse(r).success).toBe(true);
    expect(r.ratios[0].tokens_per_second).toBe(2);
    expect(r.runs[0].acceptance_by_position).toEqual([0.6, 0.3]);
    expect(reportSchema.safeParse({ ...r, schema_version: REPORT_SCHEMA_VERSION - 1 }).success).toBe(false);
    expect(reportSchema.safeParse({ ...r, runs: [{ ...r.runs[0], tokens_per_second: -1 }] }).success).toBe(false);
    expect(reportSchema.safeParse({ ...r, extra: 1 }).success).toBe(false);
  });

  it('renders a Markdown row per run with the ratio against off', () => {
    const md = renderMarkdown(report());
    expect(md).toMatch(/\| off \| 1 \| 2\/2 \| 40\.0 \| 1\.00 \|/);
    expect(md).toMatch(/\| hier \| 1 \| 2\/2 \| 80\.0 \| 2\.00 \| 2\.00 \|/);
  });

  it('renders a self-contained HTML page with inline SVG charts', () => {
    const html = renderHtml(report());
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(6);
    expect(html).toContain('Acceptance by draft position');
    expect(html).toContain('Forward cost');
    expect(html).not.toMatch(/<script|<link|src=|href=/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });
});

describe('soak RSS timeline', () => {
  const MiB = 2 ** 20;
  const timeline = (mib: number[]) => mib.map((m, i) => ({ t: i * 5, bytes: m * MiB }));
  const result = (mib: number[]): SoakResult => ({
    durationS: 60, clients: 4, requests: 10, completed: 10, abortedByClient: 0, failed: 0, errors: {},
    documents: { posted: 0, rateLimited: 0 }, after: { running: 0, queued: 0 }, rss: rssSummary(timeline(mib), 5),
  });

  it('reports every sample and calls a curve that levels off flat, one still climbing not', () => {
    const levelling = result([200, 260, 300, 320, 330, 332, 333, 334, 333, 335]);
    expect(levelling.rss.timeline).toHaveLength(10);
    expect(levelling.rss.flattened).toBe(true);
    expect(renderSoak(levelling)).toMatch(/RSS timeline \(MiB, every 5 s\): 0 s 200, 5 s 260, .*45 s 335/);
    expect(renderSoak(levelling)).toContain('flattened');
    const climbing = result([200, 230, 260, 290, 320, 350, 380, 410, 440, 470]);
    expect(climbing.rss.flattened).toBe(false);
    expect(renderSoak(climbing)).toContain('STILL CLIMBING');
    expect(result([200, 210]).rss.flattened).toBeNull();
  });
});
