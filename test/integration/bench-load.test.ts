import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BenchError } from '../../bench/errors.js';
import { runLoad, type LoadPlan } from '../../bench/load.js';
import { summariseRun } from '../../bench/metrics.js';
import { reportSchema } from '../../bench/report/schema.js';
import { resolveTarget } from '../../bench/target.js';
import type { WorkloadItem } from '../../bench/workload.js';
import { startFakeServer, type FakeServer, type FakeServerOptions } from '../helpers/fake-openai-server.js';
import { runNode } from '../helpers/run-node.js';

const items: WorkloadItem[] = ['alpha', 'beta', 'gamma'].map((c, i) => ({ id: String(i), source: 't', messages: [{ role: 'user', content: c }] }));
let server: FakeServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function plan(opts: FakeServerOptions, over: Partial<LoadPlan> = {}): Promise<LoadPlan> {
  server = await startFakeServer(opts);
  const target = resolveTarget(server.baseUrl, { allowRemote: false, apiKey: null, requestTimeoutMs: 2000, connections: 8 });
  return { target, model: 'fake-model', items, arrival: { kind: 'concurrency', concurrency: 4 }, requests: 12, durationS: null, maxTokens: 8, extraBody: {}, ...over };
}

describe('runLoad against an OpenAI-compatible server', () => {
  it('runs a fixed count at fixed concurrency and reads the lookahead block', async () => {
    const p = await plan({ tokens: 8 }, { extraBody: { lookahead: { enabled: true, layout: 'hier' } } });
    const { samples, durationS } = await runLoad(p);
    expect(samples).toHaveLength(12);
    expect(samples.every((s) => s.ok && s.completionTokens === 8 && s.ttftMs !== null)).toBe(true);
    const s = summariseRun(samples, durationS);
    expect(s.tokensPerStep).toBe(2);
    expect(s.acceptanceByPosition).toEqual([1]);
    expect(server!.bodies[0]).toMatchObject({ model: 'fake-model', stream: true, stream_options: { include_usage: true }, temperature: 0, lookahead: { enabled: true } });
  });

  it('reports what a stock server does not send as null', async () => {
    const { samples, durationS } = await runLoad(await plan({ plain: true, tokens: 4 }));
    const s = summariseRun(samples, durationS);
    expect(s.completed).toBe(12);
    expect(s.tokensPerStep).toBeNull();
    expect(s.acceptanceByPosition).toBeNull();
  });

  it('sends follow-up turns in one session with the previous answer', async () => {
    const sessionItems: WorkloadItem[] = [{ ...items[0], followUps: ['again'] }];
    const { samples } = await runLoad(await plan({ tokens: 3 }, { items: sessionItems, requests: 2, arrival: { kind: 'concurrency', concurrency: 1 } }));
    expect(samples).toHaveLength(2);
    const second = server!.bodies[1].messages as { role: string; content: string }[];
    expect(second.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(second[1].content).toBe(' tok tok tok');
  });

  it('open loop: Poisson arrivals stop at the request count', async () => {
    const { samples } = await runLoad(await plan({ tokens: 2 }, { arrival: { kind: 'rate', requestsPerSecond: 200, seed: 7 }, requests: 10 }));
    expect(samples).toHaveLength(10);
    expect(samples.every((s) => s.ok)).toBe(true);
  });

  it('stops on its own after a duration', async () => {
    const t0 = performance.now();
    const { samples } = await runLoad(await plan({ tokens: 2, chunkDelayMs: 5 }, { requests: null, durationS: 0.3 }));
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(samples.length).toBeGreaterThan(0);
  });

  it('gives up with a clear error when every request fails', async () => {
    await expect(runLoad(await plan({ mode: 'http500' }))).rejects.toThrow(/first 5 requests all failed; last: http_500: HTTP 500: scripted failure/);
  });

  it('times out a server that never answers', async () => {
    const p = await plan({ mode: 'hang' }, { requests: 2, arrival: { kind: 'concurrency', concurrency: 2 } });
    p.target = resolveTarget(server!.baseUrl, { allowRemote: false, apiKey: null, requestTimeoutMs: 300, connections: 4 });
    const err = await runLoad(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BenchError);
    expect((err as Error).message).toMatch(/timeout: no complete response within 300 ms/);
  });

  it('classifies an error event in the stream', async () => {
    const seen: string[] = [];
    const p = await plan({ mode: 'stream_error', tokens: 4 }, { failFast: 100, onSample: (s) => seen.push(String(s.errorType)) });
    await expect(runLoad(p)).rejects.toThrow(/first 12 requests all failed; last: stream_error: scripted mid-stream failure/);
    expect(seen).toEqual(Array(12).fill('stream_error'));
  });
});

const CLI = ['--import', 'tsx', 'bench/cli.ts'];
function cli(args: string[], timeout = 60_000) {
  return spawnSync(process.execPath, [...CLI, ...args, '--quiet'], { encoding: 'utf8', timeout });
}

describe('bench CLI failures end with a message and a non-zero exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-cli-'));
  const workload = join(dir, 'w.jsonl');
  writeFileSync(workload, items.map((i) => JSON.stringify({ messages: i.messages })).join('\n'));

  it('an unreachable base URL', () => {
    const r = cli(['load', '--base-url', 'http://127.0.0.1:9/v1', '--workload', workload, '--requests', '3']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bench: .*\/v1\/models: cannot connect/);
  });

  it('a workload with a broken line', () => {
    const broken = join(dir, 'broken.jsonl');
    writeFileSync(broken, `${JSON.stringify({ messages: items[0].messages })}\nnot json\n`);
    const r = cli(['load', '--workload', broken, '--requests', '3']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/broken\.jsonl line 2: not valid JSON/);
  });

  it('a run with no end', () => {
    const r = cli(['load', '--workload', workload]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--requests N or --duration/);
  });

  // Spawned asynchronously: the fake server lives in this process and must keep answering.
  const runCli = (args: string[]) => runNode([...CLI, ...args, '--quiet']);

  it('a server whose requests all fail', async () => {
    server = await startFakeServer({ mode: 'stream_error', tokens: 4 });
    const r = await runCli(['load', '--base-url', server.baseUrl, '--workload', workload, '--requests', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/first 3 requests all failed; last: stream_error/);
  });

  it('a server whose requests sometimes fail: report written with errors by type, exit 3', async () => {
    server = await startFakeServer({ tokens: 4, failEvery: 2 });
    const out = join(dir, 'flaky');
    const r = await runCli(['load', '--base-url', server.baseUrl, '--workload', workload, '--requests', '6', '--out', out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/3 of 6 requests failed \(http_503\)/);
    const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    expect(report.runs[0].errors).toEqual({ http_503: 3 });
    expect(report.runs[0].completed).toBe(3);
  });

  it('a healthy run writes a schema-valid report', async () => {
    server = await startFakeServer({ tokens: 6 });
    const out = join(dir, 'ok');
    const { code, stdout } = await runCli(['load', '--base-url', server.baseUrl, '--workload', workload, '--requests', '4', '--concurrency', '1,2', '--lookahead', 'hier', '--out', out]);
    expect(code).toBe(0);
    const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    expect(report.runs.map((r) => [r.label, r.concurrency, r.completed])).toEqual([['hier', 1, 4], ['hier', 2, 4]]);
    expect(report.runs[0].rss_bytes!.length).toBeGreaterThan(0);
    expect(stdout).toContain('| hier | 2 | 4/4 |');
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<svg');
  });

  it('with --model and no --base-url, starts our server on that model', async () => {
    const out = join(dir, 'spawned');
    const { code, stderr } = await runCli(['load', '--model', 'builtin:synthetic', '--workload', workload, '--requests', '2', '--max-tokens', '4', '--lookahead', 'off', '--no-forward-cost', '--out', out]);
    expect(code, stderr).toBe(0);
    const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    expect(report.config.server).toBe('spawned');
    expect(report.model.path).toBe('builtin:synthetic');
    expect(report.runs[0]).toMatchObject({ label: 'off', completed: 2, draft_sizes: { 1: expect.any(Number) } });
  }, 120_000);

  it("--warmup answers the warm-up items first (the model's own answers warm the trie), then measures the rest", async () => {
    server = await startFakeServer({ tokens: 3 });
    const out = join(dir, 'warm');
    const many = join(dir, 'many.jsonl');
    writeFileSync(many, Array.from({ length: 10 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `q${i}` }] })).join('\n'));
    const { code } = await runCli(['load', '--base-url', server.baseUrl, '--workload', many, '--warmup', '4', '--requests', '3', '--concurrency', '1', '--out', out]);
    expect(code).toBe(0);
    const asked = server.bodies.map((b) => (b.messages as { content: string }[])[0].content);
    expect(asked.slice(0, 4).sort()).toEqual(['q0', 'q1', 'q2', 'q3']);
    expect(asked.slice(4)).toEqual(['q4', 'q5', 'q6']);
    const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    expect(report.config.workload).toMatchObject({ warmup_items: 4, warmup_applied: true });
  });
});
