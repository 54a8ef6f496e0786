/**
 * `bench table`: the README's bench table in one command — the fair `ab` (off vs hier, 1/4/8 clients, held-out
 * prompts after the warm-up protocol) on chat-llama-5m and on the 150M-cost benchmark model, one report each, and
 * one Markdown table of both.
 */
import { join } from 'node:path';
import { runAb, type AbOptions } from './ab.js';
import { resolveBenchModel, WIDE_MODEL } from './bench-model.js';
import { forwardCostCurve } from './forward-cost-command.js';
import { interval, num, sizes } from './report/markdown.js';
import type { Report } from './report/schema.js';
import { writeReport } from './report/write.js';

/** The shipped default model: `null` makes the spawned server load it. */
export const TABLE_MODELS: { name: string; model: string | null }[] = [
  { name: 'chat-llama-5m', model: null },
  { name: WIDE_MODEL, model: WIDE_MODEL },
];

export type TableOptions = Omit<AbOptions, 'command' | 'baseUrl' | 'modelPath' | 'tenantKeys' | 'adminKey' | 'forwardCost' | 'modelId'> & {
  out: string | null;
  log: (line: string) => void;
};

export async function runTable(o: TableOptions, command: string): Promise<{ reports: Report[]; failed: number; markdown: string }> {
  const reports: Report[] = [];
  let failed = 0;
  for (const { name, model } of TABLE_MODELS) {
    o.log(`${name}: ab off vs hier at ${o.concurrency.join('/')} clients…`);
    const modelPath = resolveBenchModel(model, o.log);
    const outcome = await runAb({ ...o, command, baseUrl: null, modelPath, modelId: null, tenantKeys: null, adminKey: null, forwardCost: (path) => forwardCostCurve(path) });
    if (o.out) writeReport(join(o.out, name), outcome.report);
    reports.push(outcome.report);
    failed += outcome.failed;
  }
  return { reports, failed, markdown: renderTable(reports, command) };
}

/** One row per model and client count: aggregate throughput, the paired decode speed-up, scaling, TTFT, draft sizes. */
export function renderTable(reports: readonly Report[], command: string): string {
  const lines = [
    '| model | clients | tok/s off | tok/s hier | decode × (paired, 95 % CI) | tokens/step | off × 1 client | hier × 1 client | decode tok/s off / hier (× 1 client) | TTFT p50 ms off / hier | hier draft sizes (size×steps) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of reports) {
    const ab = r.ab!;
    for (const c of r.config.concurrency) {
      const sc = (label: string) => ab.scaling.find((s) => s.label === label && s.concurrency === c);
      const run = r.runs.find((x) => x.label === 'hier' && x.concurrency === c);
      const p = ab.paired.find((x) => x.concurrency === c);
      lines.push(
        `| ${r.model.id} | ${c} | ${num(sc('off')?.tokens_per_second, 1)} | ${num(sc('hier')?.tokens_per_second, 1)} | ${interval(p?.decode_tokens_per_second ?? null)} | ${num(run?.tokens_per_step, 2)} | ${num(sc('off')?.vs_one_client, 2)} | ${num(sc('hier')?.vs_one_client, 2)} | ${decodeCell(sc('off'))} / ${decodeCell(sc('hier'))} | ${num(sc('off')?.ttft_p50_ms, 0)} / ${num(sc('hier')?.ttft_p50_ms, 0)} | ${sizes(run?.draft_sizes ?? null, 3)} |`,
      );
    }
  }
  const first = reports[0];
  const setup = first
    ? `${first.config.workload.items} held-out prompts after ${first.ab!.warmup_per_tenant} warm-up items per tenant, greedy, ≤ ${first.config.max_tokens} new tokens; ${first.machine.cpu_model}, ${first.machine.cores} cores`
    : '';
  return `${lines.join('\n')}\n\n${setup}. \`${command}\`\n`;
}

function decodeCell(sc: { decode_tokens_per_second: number | null; decode_vs_one_client: number | null } | undefined): string {
  return `${num(sc?.decode_tokens_per_second ?? null, 1)} (×${num(sc?.decode_vs_one_client ?? null, 2)})`;
}
