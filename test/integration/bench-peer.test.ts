import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reportSchema } from '../../bench/report/schema.js';
import { SHARED_DATA } from '../helpers/paths.js';
import { runNode } from '../helpers/run-node.js';

const MODEL = join(SHARED_DATA, 'models/chat-llama-5m');
const DEV = join(SHARED_DATA, 'datasets/rag-eval/dev.jsonl');
const have = existsSync(MODEL) && existsSync(DEV);
if (!have) console.warn(`bench-peer: ${MODEL} or ${DEV} is absent; skipping the transformers.js comparison`);

/** transformers.js on our standard export vs our server: both greedy, so the texts must agree exactly. */
describe.skipIf(!have)('bench peer-transformers on chat-llama-5m', () => {
  it('runs both engines on the same prompts and their greedy outputs agree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-peer-'));
    const peerModel = join(dir, 'chat-llama-5m-standard');
    const build = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'build-model', '--from', MODEL, '--out', peerModel, '--layout', 'standard'], { encoding: 'utf8', timeout: 120_000 });
    expect(build.status, build.stderr).toBe(0);
    const out = join(dir, 'out');
    const args = ['--import', 'tsx', 'bench/cli.ts', 'peer-transformers', '--model', MODEL, '--peer-model', peerModel, '--workload', DEV, '--requests', '3', '--max-tokens', '16', '--out', out, '--quiet'];
    const { code, stderr } = await runNode(args);
    expect(code, stderr).toBe(0);
    const report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    const peer = report.peer!;
    expect(peer.runs.map((r) => r.label)).toEqual(['transformers.js', 'ours off', 'ours hier']);
    expect(peer.runs.every((r) => r.generated_tokens > 0 && r.tokens_per_second > 0)).toBe(true);
    expect(peer.agreement).toEqual({ compared: 3, identical: 3, basis: 'text' });
    expect(Object.values(peer.ratios).every((v) => v !== null && v > 0)).toBe(true);
    // Every ratio paired per prompt; ours off vs on is ab's fair A/B (its own tenants, ABBA), lossless.
    expect(Object.keys(peer.paired)).toEqual(['ours off / transformers.js', 'ours hier / transformers.js']);
    expect(Object.values(peer.paired).every((i) => i !== null && i.n === 3 && i.low <= i.estimate && i.estimate <= i.high)).toBe(true);
    expect(report.ab!.paired).toHaveLength(1);
    expect(report.ab!.paired[0]).toMatchObject({ label: 'hier', baseline: 'off', concurrency: 1, identical_outputs: 3, compared_outputs: 3 });
  }, 120_000);
});
