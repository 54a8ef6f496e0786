import { renderMarkdown } from './markdown.js';
import type { Report } from './schema.js';
import { barChart, esc, lineChart, type Series } from './svg.js';

/** One self-contained page: inline CSS and SVG, no scripts, no external references. */
export function renderHtml(report: Report): string {
  const labels = [...new Set(report.runs.map((r) => r.label))];
  const byLabel = (pick: (r: Report['runs'][number]) => number | null | undefined): Series[] =>
    labels.map((label) => ({
      name: label,
      points: report.runs
        .filter((r) => r.label === label && r.concurrency !== null)
        .map((r) => [r.concurrency!, pick(r)] as [number, number | null | undefined])
        .filter((p): p is [number, number] => typeof p[1] === 'number'),
    }));
  const charts: string[] = [];
  if (report.runs.length > 0) {
    charts.push(lineChart({ title: 'Generated tokens/s vs concurrency', xLabel: 'concurrency', yLabel: 'tokens/s', series: byLabel((r) => r.tokens_per_second), logX: true }));
    charts.push(lineChart({ title: 'Latency p50 vs concurrency', xLabel: 'concurrency', yLabel: 'ms', series: byLabel((r) => r.latency_ms?.p50), logX: true }));
    charts.push(lineChart({ title: 'Latency p99 vs concurrency', xLabel: 'concurrency', yLabel: 'ms', series: byLabel((r) => r.latency_ms?.p99), logX: true }));
    charts.push(lineChart({ title: 'TTFT p50 vs concurrency', xLabel: 'concurrency', yLabel: 'ms', series: byLabel((r) => r.ttft_ms?.p50), logX: true }));
    const acc = report.runs.filter((r) => r.acceptance_by_position && r.acceptance_by_position.length > 0);
    const depth = Math.max(0, ...acc.map((r) => r.acceptance_by_position!.length));
    charts.push(
      barChart({
        title: 'Acceptance by draft position (share of steps)',
        xLabel: 'draft position',
        yLabel: 'accepted / steps',
        groups: Array.from({ length: depth }, (_, i) => String(i + 1)),
        series: acc.map((r) => ({ name: `${r.label} c${r.concurrency ?? '-'}`, values: Array.from({ length: depth }, (_, i) => r.acceptance_by_position![i] ?? null) })),
      }),
    );
    const rss = report.runs.filter((r) => r.rss_bytes);
    if (rss.length > 0) {
      charts.push(lineChart({ title: 'Server RSS during each run', xLabel: 'seconds', yLabel: 'bytes', series: rss.map((r) => ({ name: `${r.label} c${r.concurrency ?? '-'}`, points: r.rss_bytes!.map((p) => [p.t, p.bytes] as [number, number]) })) }));
    }
  }
  if (report.ab && report.ab.paired.length > 0) {
    // The interval's ends as their own lines: the reader sees at once whether ×1 lies inside.
    const series = [...new Set(report.ab.paired.map((p) => p.label))].flatMap((label) =>
      (['low', 'estimate', 'high'] as const).map((end) => ({
        name: `${label} ${end}`,
        points: report.ab!.paired.filter((p) => p.label === label && p.decode_tokens_per_second).map((p) => [p.concurrency, p.decode_tokens_per_second![end]] as [number, number]),
      })),
    );
    charts.push(lineChart({ title: `Paired decode speed-up vs ${report.ab.paired[0].baseline} (95 % CI)`, xLabel: 'concurrency', yLabel: '× tokens/s', series, logX: true }));
  }
  if (report.forward_cost) {
    charts.push(lineChart({ title: 'Forward cost: k new tokens vs time', xLabel: 'k', yLabel: 'ms per forward', series: [{ name: 'forward', points: report.forward_cost.map((p) => [p.k, p.ms] as [number, number]) }], logX: true }));
  }
  if (report.peer) {
    charts.push(barChart({ title: 'Peer comparison: tokens/s', xLabel: 'engine', yLabel: 'tokens/s', groups: report.peer.runs.map((r) => r.label), series: [{ name: 'tokens/s', values: report.peer.runs.map((r) => r.tokens_per_second) }] }));
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lookahead-proxy bench: ${esc(report.kind)} ${esc(report.model.id)}</title>
<style>body{font-family:sans-serif;max-width:1180px;margin:24px auto;color:#222}pre{background:#f6f6f6;padding:12px;overflow-x:auto;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:12px}</style>
</head><body>
<h1>${esc(report.kind)} · ${esc(report.model.id)}</h1>
<p>${esc(report.created_at)} · ${esc(report.machine.cpu_model)} (${report.machine.cores} cores) · Node ${esc(report.machine.node_version)} · ORT ${esc(report.machine.ort_version ?? 'n/a')}</p>
<p><code>${esc(report.command)}</code></p>
<h2>Summary</h2>
<pre>${esc(renderMarkdown(report))}</pre>
<h2>Charts</h2>
<div class="charts">${charts.join('\n')}</div>
<h2>Raw report</h2>
<pre>${esc(JSON.stringify(report, null, 2))}</pre>
</body></html>
`;
}
