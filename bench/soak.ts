import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Target } from './client.js';
import { streamChat } from './client.js';
import { lineChart } from './report/svg.js';
import { RssSampler, type RssPoint } from './rss.js';
import { spawnServer, type SpawnedServer } from './server-process.js';
import { call, resolveTarget } from './target.js';

export interface SoakOptions {
  /** null = spawn our server (embedded default unless modelPath). */
  baseUrl: string | null;
  modelPath: string | null;
  serverArgs: string[];
  apiKey: string | null;
  allowRemote: boolean;
  durationS: number;
  clients: number;
  /** Fraction of requests that hang up at a random point. */
  abortFraction: number;
  maxTokens: number;
  seed: number;
  startupTimeoutMs: number;
  quiet: boolean;
  /**
   * Tenants mixed in (0 = none): our spawned server gets one API key per tenant and each client uses one; with
   * `documentEvery` > 0 a client's every n-th request posts a document to its tenant instead, and with
   * `sessionIds` > 0 chats carry an X-Session-Id drawn from that many.
   */
  tenants: number;
  documentEvery: number;
  sessionIds: number;
  /** Seconds between RSS samples of the server (the timeline in the report). */
  rssIntervalS: number;
}

/** The server's RSS over the run, and whether it levelled off (see rssSummary). */
export interface SoakRss {
  startBytes: number | null;
  endBytes: number | null;
  maxBytes: number | null;
  points: number;
  intervalS: number;
  /** Every sample: seconds since the clients started, bytes. */
  timeline: RssPoint[];
  /** Growth over the first and the second half of the run (each end a median of 3 samples); null if too few. */
  growth: { firstHalfBytes: number; secondHalfBytes: number } | null;
  /** The second half grew at most a quarter of the first half's growth, or 16 MiB: memory stopped climbing. */
  flattened: boolean | null;
}

export interface SoakResult {
  durationS: number;
  clients: number;
  requests: number;
  completed: number;
  abortedByClient: number;
  failed: number;
  errors: Record<string, number>;
  /** Documents posted (and refused by the per-tenant rate limit, which is not a failure). */
  documents: { posted: number; rateLimited: number };
  rss: SoakRss;
  /** Engine state after the clients stopped and the queue had time to drain. */
  after: { running: number | null; queued: number | null };
}

const PROMPTS = [
  'Tell a long story about a lighthouse keeper.',
  'Explain how a bicycle works, step by step.',
  'Write a letter to a friend about the weather.',
  'List ten things to pack for a trip and why.',
];

/**
 * Long-running load with disconnects: `clients` streaming clients in a loop for `durationS`, a share of their
 * requests cut at a random moment. The server's RSS is sampled every `rssIntervalS` throughout; what matters is
 * that it levels off.
 */
export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  let spawned: SpawnedServer | null = null;
  const keys = Array.from({ length: opts.tenants }, (_, i) => `sk-soak-tenant-${i}`);
  if (opts.baseUrl === null) {
    const extraArgs = [...opts.serverArgs];
    if (keys.length > 0) {
      const dir = mkdtempSync(join(tmpdir(), 'lookahead-soak-'));
      const config = join(dir, 'tenants.yaml');
      writeFileSync(config, `auth:\n  apiKeys:\n${keys.map((k, i) => `    - { key: ${k}, tenant: soak-${i} }`).join('\n')}\n`);
      extraArgs.push('--config', config);
    }
    spawned = await spawnServer({ model: opts.modelPath, extraArgs, startupTimeoutMs: opts.startupTimeoutMs });
  }
  try {
    const target = resolveTarget(spawned?.baseUrl ?? opts.baseUrl!, { allowRemote: opts.allowRemote, apiKey: opts.apiKey ?? keys[0] ?? null, requestTimeoutMs: 120_000, connections: opts.clients + 4 });
    const model = await firstModel(target);
    const sampler = new RssSampler(target, spawned?.pid ?? null, opts.rssIntervalS * 1000, 10_000);
    sampler.begin();
    const result = await drive(target, model, opts, keys);
    // Give aborted jobs a moment to end before the last reading.
    const after = await settle(target);
    const points = (await sampler.end()) ?? [];
    return { ...result, after, rss: rssSummary(points, opts.rssIntervalS) };
  } finally {
    await spawned?.stop();
  }
}

async function drive(target: Target, model: string, opts: SoakOptions, keys: string[]) {
  const stop = new AbortController();
  const deadline = performance.now() + opts.durationS * 1000;
  const stopTimer = setTimeout(() => stop.abort(), opts.durationS * 1000 + 120_000);
  let seed = opts.seed >>> 0 || 1;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const counts = { requests: 0, completed: 0, abortedByClient: 0, failed: 0, errors: {} as Record<string, number>, documents: { posted: 0, rateLimited: 0 } };
  const fail = (kind: string) => {
    counts.failed++;
    counts.errors[kind] = (counts.errors[kind] ?? 0) + 1;
  };
  let lastReport = performance.now();
  // Hang-ups land anywhere in a request's life: the delay is drawn from 0 .. the typical full duration so far.
  let typicalMs = 500;
  const client = async (i: number) => {
    const auth: Record<string, string> = keys.length > 0 ? { authorization: `Bearer ${keys[i % keys.length]}` } : {};
    for (let n = 1; performance.now() < deadline; n++) {
      if (opts.documentEvery > 0 && n % opts.documentEvery === 0) {
        const res = await call(target, `${target.apiBase}/lookahead/documents`, { method: 'POST', json: { documents: [soakDocument(random)] }, headers: auth, timeoutMs: 120_000 }).catch(() => null);
        if (res?.status === 200) counts.documents.posted++;
        else if (res?.status === 429) counts.documents.rateLimited++;
        else fail(`documents ${res?.status ?? 'unreachable'}`);
        continue;
      }
      const headers = opts.sessionIds > 0 ? { ...auth, 'x-session-id': `soak-session-${Math.floor(random() * opts.sessionIds)}` } : auth;
      const hangUp = random() < opts.abortFraction;
      const own = new AbortController();
      const timer = hangUp ? setTimeout(() => own.abort(), Math.floor(random() * typicalMs)) : null;
      counts.requests++;
      const sample = await streamChat(
        target,
        { model, messages: [{ role: 'user', content: PROMPTS[(i + counts.requests) % PROMPTS.length] }], max_tokens: opts.maxTokens },
        headers,
        AbortSignal.any([own.signal, stop.signal]),
      );
      if (timer) clearTimeout(timer);
      if (sample.ok) {
        counts.completed++;
        typicalMs = 0.9 * typicalMs + 0.1 * sample.e2eMs;
      }
      else if (own.signal.aborted) counts.abortedByClient++;
      else fail(sample.errorType ?? 'unknown');
      if (!opts.quiet && performance.now() - lastReport > 30_000) {
        lastReport = performance.now();
        const left = Math.max(0, Math.round((deadline - performance.now()) / 1000));
        process.stderr.write(`soak: ${counts.requests} requests, ${counts.completed} completed, ${counts.abortedByClient} cut, ${counts.failed} failed; ${left} s left\n`);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: opts.clients }, (_, i) => client(i)));
  clearTimeout(stopTimer);
  return { durationS: (performance.now() - started) / 1000, clients: opts.clients, ...counts };
}

const WORDS = ['harbor', 'lantern', 'signal', 'keeper', 'storm', 'north', 'granite', 'tide', 'beacon', 'salt', 'winter', 'ledger'];

/** About 16 KB of word salad: a RAG document as far as the tries are concerned. */
function soakDocument(random: () => number): string {
  const parts: string[] = [];
  for (let bytes = 0; bytes < 16_384; ) {
    const w = `${WORDS[Math.floor(random() * WORDS.length)]} `;
    parts.push(w);
    bytes += w.length;
  }
  return parts.join('');
}

async function firstModel(target: Target): Promise<string> {
  const res = await call(target, `${target.apiBase}/models`);
  const id = (JSON.parse(res.text) as { data?: { id: string }[] }).data?.[0]?.id;
  if (!id) throw new Error(`no model listed at ${target.apiBase}/models (HTTP ${res.status})`);
  return id;
}

/** Waits (bounded) for the server's queue to empty, from /ready's counters. */
async function settle(target: Target): Promise<SoakResult['after']> {
  let last: SoakResult['after'] = { running: null, queued: null };
  for (let i = 0; i < 100; i++) {
    try {
      const body = JSON.parse((await call(target, `${target.origin}/ready`)).text) as { running?: number; queued?: number };
      last = { running: body.running ?? null, queued: body.queued ?? null };
      if (last.running === 0 && last.queued === 0) return last;
    } catch {
      // not our server, or busy: try again
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

const FLAT_SLACK_BYTES = 16 * 2 ** 20;

/** The timeline and its verdict: the second half may grow at most a quarter of the first half, or 16 MiB. */
export function rssSummary(points: RssPoint[], intervalS: number): SoakRss {
  const base = { points: points.length, intervalS, timeline: points };
  if (points.length === 0) return { ...base, startBytes: null, endBytes: null, maxBytes: null, growth: null, flattened: null };
  const bytes = points.map((p) => p.bytes);
  const summary = { ...base, startBytes: bytes[0], endBytes: bytes.at(-1)!, maxBytes: Math.max(...bytes) };
  if (points.length < 6) return { ...summary, growth: null, flattened: null };
  // A median of three samples around each end, so one GC pause or spike does not decide the verdict.
  const around = (i: number) => median(bytes.slice(Math.max(0, Math.min(i - 1, bytes.length - 3)), Math.max(0, Math.min(i - 1, bytes.length - 3)) + 3));
  const start = around(0);
  const middle = around(Math.floor(bytes.length / 2));
  const end = around(bytes.length - 1);
  const growth = { firstHalfBytes: middle - start, secondHalfBytes: end - middle };
  return { ...summary, growth, flattened: growth.secondHalfBytes <= Math.max(growth.firstHalfBytes / 4, FLAT_SLACK_BYTES) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The timeline as one line of at most `rows` readings, evenly spaced. */
function timelineLine(timeline: RssPoint[], rows = 24): string {
  const step = Math.max(1, Math.ceil(timeline.length / rows));
  const shown = timeline.filter((_, i) => i % step === 0 || i === timeline.length - 1);
  return shown.map((p) => `${p.t.toFixed(0)} s ${(p.bytes / 2 ** 20).toFixed(0)}`).join(', ');
}

export function renderSoak(r: SoakResult): string {
  const mib = (b: number | null) => (b === null ? 'n/a' : `${(b / 2 ** 20).toFixed(1)} MiB`);
  return [
    `# soak: ${r.clients} streaming clients for ${r.durationS.toFixed(0)} s, with disconnects`,
    '',
    `| requests | completed | cut by client | failed | documents (429) | RSS start | RSS end | RSS max | after: running / queued |`,
    `|---|---|---|---|---|---|---|---|---|`,
    `| ${r.requests} | ${r.completed} | ${r.abortedByClient} | ${r.failed} | ${r.documents.posted} (${r.documents.rateLimited}) | ${mib(r.rss.startBytes)} | ${mib(r.rss.endBytes)} | ${mib(r.rss.maxBytes)} | ${r.after.running ?? '?'} / ${r.after.queued ?? '?'} |`,
    '',
    `RSS timeline (MiB, every ${r.rss.intervalS} s): ${r.rss.timeline.length > 0 ? timelineLine(r.rss.timeline) : 'n/a'}`,
    '',
    r.rss.growth
      ? `RSS growth: first half ${mib(r.rss.growth.firstHalfBytes)}, second half ${mib(r.rss.growth.secondHalfBytes)}: ${r.rss.flattened ? 'flattened' : 'STILL CLIMBING'} (flat = second half at most a quarter of the first, or 16 MiB)`
      : 'RSS growth: too few samples for a verdict',
    '',
    Object.keys(r.errors).length > 0 ? `errors: ${JSON.stringify(r.errors)}` : 'errors: none',
    '',
  ].join('\n');
}

/** The timeline as a chart for the report folder. */
export function soakRssChart(r: SoakResult): string {
  const series = [{ name: 'server RSS', points: r.rss.timeline.map((p): [number, number] => [p.t, p.bytes / 2 ** 20]) }];
  return lineChart({ title: `Server RSS during the soak (${r.clients} clients)`, xLabel: 'seconds', yLabel: 'MiB', series });
}
