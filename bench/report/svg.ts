/**
 * Minimal SVG charts, written as strings so the HTML report needs no script and no network. Colours come from
 * a fixed palette so the same label keeps its colour across charts.
 */
const W = 560;
const H = 300;
const M = { top: 30, right: 130, bottom: 44, left: 64 };
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948', '#9c755f'];

export interface Series {
  name: string;
  points: [number, number][];
}

export function colourOf(names: string[], name: string): string {
  return PALETTE[Math.max(0, names.indexOf(name)) % PALETTE.length];
}

export function lineChart(opts: { title: string; xLabel: string; yLabel: string; series: Series[]; logX?: boolean }): string {
  const pts = opts.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) return emptyChart(opts.title);
  const fx = opts.logX ? (x: number) => Math.log2(Math.max(x, 1e-9)) : (x: number) => x;
  const xs = pts.map(([x]) => fx(x));
  const [x0, x1] = span(Math.min(...xs), Math.max(...xs));
  const [, y1] = span(0, Math.max(...pts.map(([, y]) => y)));
  const sx = (x: number) => M.left + ((fx(x) - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - (y / y1) * (H - M.top - M.bottom);
  const names = opts.series.map((s) => s.name);
  const xTicks = [...new Set(pts.map(([x]) => x))].sort((a, b) => a - b).slice(0, 12);
  const body = opts.series
    .map((s) => {
      const c = colourOf(names, s.name);
      const valid = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
      const path = valid.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      const dots = valid.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${c}"><title>${esc(s.name)}: ${fmt(x)} → ${fmt(y)}</title></circle>`).join('');
      return `<path d="${path}" fill="none" stroke="${c}" stroke-width="2"/>${dots}`;
    })
    .join('');
  return frame(opts.title, opts.xLabel, opts.yLabel, axes(xTicks.map((x) => [sx(x), fmt(x)]), y1, sy) + body + legend(names));
}

export function barChart(opts: { title: string; xLabel: string; yLabel: string; groups: string[]; series: { name: string; values: (number | null)[] }[] }): string {
  const values = opts.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  if (values.length === 0 || opts.groups.length === 0) return emptyChart(opts.title);
  const [, y1] = span(0, Math.max(...values));
  const sy = (y: number) => H - M.bottom - (y / y1) * (H - M.top - M.bottom);
  const plotW = W - M.left - M.right;
  const groupW = plotW / opts.groups.length;
  const barW = (groupW * 0.8) / Math.max(1, opts.series.length);
  const names = opts.series.map((s) => s.name);
  let body = '';
  opts.series.forEach((s, si) => {
    s.values.forEach((v, gi) => {
      if (v === null || !Number.isFinite(v)) return;
      const x = M.left + gi * groupW + groupW * 0.1 + si * barW;
      body += `<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(H - M.bottom - sy(v)).toFixed(1)}" fill="${colourOf(names, s.name)}"><title>${esc(s.name)} ${esc(opts.groups[gi])}: ${fmt(v)}</title></rect>`;
    });
  });
  const ticks: [number, string][] = opts.groups.map((g, gi) => [M.left + gi * groupW + groupW / 2, g]);
  return frame(opts.title, opts.xLabel, opts.yLabel, axes(ticks, y1, sy) + body + legend(names));
}

function axes(xTicks: [number, string][], y1: number, sy: (y: number) => number): string {
  let out = `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#444"/><line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#444"/>`;
  for (const [x, label] of xTicks) out += `<text x="${x.toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(label)}</text>`;
  for (let i = 0; i <= 4; i++) {
    const y = (y1 * i) / 4;
    out += `<line x1="${M.left}" y1="${sy(y).toFixed(1)}" x2="${W - M.right}" y2="${sy(y).toFixed(1)}" stroke="#ddd"/><text x="${M.left - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end">${fmt(y)}</text>`;
  }
  return out;
}

function legend(names: string[]): string {
  return names
    .map((n, i) => `<rect x="${W - M.right + 12}" y="${M.top + i * 18}" width="12" height="12" fill="${colourOf(names, n)}"/><text x="${W - M.right + 30}" y="${M.top + i * 18 + 10}">${esc(n)}</text>`)
    .join('');
}

function frame(title: string, xLabel: string, yLabel: string, inner: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11" role="img" aria-label="${esc(title)}"><text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>${inner}<text x="${(M.left + W - M.right) / 2}" y="${H - 6}" text-anchor="middle">${esc(xLabel)}</text><text transform="translate(14 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text></svg>`;
}

function emptyChart(title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} 60" width="${W}" height="60" font-family="sans-serif" font-size="12"><text x="10" y="20" font-weight="bold">${esc(title)}</text><text x="10" y="42">no data (the server did not report it)</text></svg>`;
}

function span(lo: number, hi: number): [number, number] {
  return hi > lo ? [lo, hi * 1.05 - lo * 0.05] : [lo - 1, hi + 1];
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e9 ? `${(v / 1e9).toFixed(1)}G` : a >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : a >= 1000 ? `${(v / 1000).toFixed(1)}k` : a >= 10 ? v.toFixed(0) : v.toFixed(2);
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
