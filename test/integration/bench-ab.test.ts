import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reportSchema } from '../../bench/report/schema.js';
import { runNode } from '../helpers/run-node.js';

/**
 * The whole path: `bench ab` spawns our server on its embedded synthetic model, runs off vs hier interleaved
 * and writes the three report files. Small on purpose (CI): 4 requests per arm, 12 tokens each.
 */
describe('bench ab against our own server', () => {
  it('writes a schema-valid report with off and hier runs and their ratio', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-ab-'));
    const workload = join(dir, 'w.jsonl');
    const prompts = ['The cat sat on the mat. The cat sat on the', 'one two three one two three one two', 'abc abc abc abc', 'hello world hello world', 'red green blue red green', 'to be or not to be'];
    writeFileSync(workload, prompts.map((p) => JSON.stringify({ messages: [{ role: 'user', content: p }] })).join('\n'));
    const out = join(dir, 'out');
    const args = ['--import', 'tsx', 'bench/cli.ts', 'ab', '--workload', workload, '--requests', '2', '--concurrency', '1', '--max-tokens', '12', '--rounds', '1', '--no-forward-cost', '--out', out, '--quiet'];
    const { code, stderr } = await runNode(args);
    expect(code, stderr).toBe(0);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
    const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    expect(report.kind).toBe('ab');
    expect(report.config.server).toBe('spawned');
    expect(report.runs.map((r) => r.label)).toEqual(['off', 'hier']);
    for (const r of report.runs) {
      expect(r.completed).toBe(2);
      expect(r.generated_tokens).toBeGreaterThan(0);
      expect(r.tokens_per_second).toBeGreaterThan(0);
      expect(r.ttft_ms).not.toBeNull();
    }
    expect(report.ratios).toHaveLength(1);
    expect(report.ratios[0]).toMatchObject({ label: 'hier', baseline: 'off', concurrency: 1 });
    expect(report.ratios[0].tokens_per_second).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/\| hier \| 1 \| 2\/2 \|/);
  }, 120_000);

  it('forward-cost measures the curve of the embedded model and reports it', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'bench-fc-')), 'out');
    const { code, stdout } = await runNode(['--import', 'tsx', 'bench/cli.ts', 'forward-cost', '--ks', '1,8', '--past', '32', '--out', out]);
    expect(code).toBe(0);
    const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    expect(report.forward_cost!.map((p) => p.k)).toEqual([1, 8]);
    expect(report.forward_cost!.every((p) => p.ms > 0)).toBe(true);
    expect(stdout).toMatch(/\| 8 \| [0-9.]+ \| [0-9.]+ \|/);
  }, 120_000);
});
