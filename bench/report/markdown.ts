import type { PairedInterval, Report } from './schema.js';

/** A table for pasting into notes: one row per run, ratios against the baseline at the same concurrency. */
export function renderMarkdown(report: Report): string {
  const lines: string[] = [];
  lines.push(`**${report.kind}** · model \`${report.model.id}\`${report.config.workload.path ? ` · workload \`${report.config.workload.path}\` (${report.config.workload.shape}) · max_tokens ${report.config.max_tokens}` : ''} · ${report.machine.cpu_model}, ${report.machine.cores} cores, Node ${report.machine.node_version}, ORT ${report.machine.ort_version ?? 'n/a'}${report.config.workload.reused_items ? ' · ⚠ workload too small: runs reused prompts, so later arms could draft from earlier answers' : ''}`);
  lines.push('');
  if (report.runs.length > 0) {
    lines.push('| run | conc. | ok/req | tok/s | × off | tok/step | TTFT p50 ms | latency p50 ms | latency p99 ms | req/s | errors |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of report.runs) {
      const ratio = report.ratios.find((x) => x.label === r.label && x.concurrency === r.concurrency);
      const errors = Object.entries(r.errors).map(([k, v]) => `${k}×${v}`).join(' ') || '—';
      lines.push(
        `| ${r.label} | ${r.concurrency ?? `${r.requests_per_second_target} rps`} | ${r.completed}/${r.requests} | ${num(r.tokens_per_second, 1)} | ${ratio ? num(ratio.tokens_per_second, 2) : r.label === 'off' ? '1.00' : '—'} | ${num(r.tokens_per_step, 2)} | ${num(r.ttft_ms?.p50, 0)} | ${num(r.latency_ms?.p50, 0)} | ${num(r.latency_ms?.p99, 0)} | ${num(r.requests_per_second, 2)} | ${errors} |`,
      );
    }
  }
  if (report.ab) lines.push(...abLines(report));
  if (report.forward_cost && report.forward_cost.length > 0) {
    const base = report.forward_cost[0].ms;
    lines.push('');
    lines.push('| k new tokens | ms per forward | × first |');
    lines.push('|---:|---:|---:|');
    for (const p of report.forward_cost) lines.push(`| ${p.k} | ${num(p.ms, 3)} | ${num(base > 0 ? p.ms / base : null, 2)} |`);
  }
  if (report.peer) {
    const p = report.peer;
    lines.push('');
    lines.push(`Peer: ${p.engine} on \`${p.model_path}\`, ${p.prompts} prompts, max_tokens ${p.max_tokens}; greedy outputs identical: ${p.agreement.identical}/${p.agreement.compared} (${p.agreement.basis})`);
    lines.push('');
    lines.push('| engine | tok/s | tokens | seconds |');
    lines.push('|---|---:|---:|---:|');
    for (const r of p.runs) lines.push(`| ${r.label} | ${num(r.tokens_per_second, 1)} | ${r.generated_tokens} | ${num(r.duration_s, 1)} |`);
    lines.push('');
    lines.push(Object.entries(p.ratios).map(([k, v]) => `${k}: ${num(v, 2)}`).join(' · '));
    lines.push('');
    lines.push(`paired per prompt: ${Object.entries(p.paired).map(([k, v]) => `${k} ${interval(v)}`).join(' · ')}`);
  }
  return `${lines.join('\n')}\n`;
}

export function num(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

/** The fair A/B: paired ratios with their intervals, scaling over clients, and what the server did per step. */
function abLines(report: Report): string[] {
  const ab = report.ab!;
  const lines = [
    '',
    `Fair A/B: ${ab.prompts} prompts per arm and level, ${ab.order}; ${ab.isolation}${ab.warmup_per_tenant ? ` (${ab.warmup_per_tenant} warm-up items each)` : ''}. Paired per prompt: geometric mean of arm ÷ ${ab.paired[0]?.baseline ?? 'baseline'} [${Math.round(ab.bootstrap.level * 100)} % bootstrap CI, ${ab.bootstrap.resamples} resamples, seed ${ab.bootstrap.seed}].`,
    '',
    '| arm | conc. | decode tok/s × | TPOT × | tokens/step × | identical outputs |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const p of ab.paired) {
    lines.push(`| ${p.label} | ${p.concurrency} | ${interval(p.decode_tokens_per_second)} | ${interval(p.tpot)} | ${interval(p.tokens_per_step)} | ${p.identical_outputs}/${p.compared_outputs} |`);
  }
  lines.push('', '| arm | conc. | aggregate tok/s | × 1 client | aggregate decode tok/s | × 1 client | TTFT p50 ms | TPOT p50 ms (client) | server ms/token | forward ms/step | draft sizes (forward size×steps) |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const sc of ab.scaling) {
    const run = report.runs.find((r) => r.label === sc.label && r.concurrency === sc.concurrency);
    lines.push(
      `| ${sc.label} | ${sc.concurrency} | ${num(sc.tokens_per_second, 1)} | ${num(sc.vs_one_client, 2)} | ${num(sc.decode_tokens_per_second, 1)} | ${num(sc.decode_vs_one_client, 2)} | ${num(sc.ttft_p50_ms, 0)} | ${num(run?.tpot_ms?.p50, 1)} | ${num(run?.server_tpot_ms, 1)} | ${num(run?.forward_ms_per_step, 1)} | ${sizes(run?.draft_sizes ?? null)} |`,
    );
  }
  return lines;
}

export function interval(i: PairedInterval | null): string {
  return i === null ? '—' : `${i.estimate.toFixed(2)} [${i.low.toFixed(2)}, ${i.high.toFixed(2)}]`;
}

/** The most used sizes first, so a swing between runs shows at a glance. */
export function sizes(d: Record<string, number> | null, top = 5): string {
  if (d === null) return '—';
  return Object.entries(d)
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, n]) => `${k}×${n}`)
    .join(' ');
}
