import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { collectJob, GREEDY } from '../src/engine/collect.js';
import { GrammarCompilers } from '../src/engine/grammar/compiler.js';
import { createEngine } from '../src/engine/index.js';
import { readJsonl } from '../src/engine/jsonl.js';
import type { Engine, JobResult, JobSpec, LookaheadOptions, OutputConstraint } from '../src/engine/types.js';
import { BenchError } from './errors.js';

/**
 * Structured extraction from RAG contexts, lookahead off vs on in one process: "extract {title, date, people[]} from
 * this article" as a json_schema constraint over news articles (llma/cnndm.jsonl's inputs). Pairs run interleaved
 * (off, on / on, off alternately) on the same engine; each arm answers as its own tenant, so an on-run drafts only from
 * the prompt, the schema and earlier on-answers to *other* articles — never from the off-run of the same one.
 */
export const EXTRACTION_SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string', maxLength: 80 },
    date: { type: 'string', format: 'date' },
    people: { type: 'array', items: { type: 'string', maxLength: 40 }, maxItems: 5 },
  },
  required: ['title', 'date', 'people'],
} as const;

/** Article text kept per prompt: the model's 2048-token context holds this plus the answer. */
const ARTICLE_CHARS = 3000;

export interface StructuredOptions {
  model: string | null;
  workload: string;
  requests: number;
  maxTokens: number;
  lookahead: LookaheadOptions;
}

interface ArmTotals {
  /** Completion tokens; decodeTokens excludes each answer's first (it comes from the prefill). */
  tokens: number;
  decodeTokens: number;
  steps: number;
  decodeSeconds: number;
  maskSeconds: number;
  /** Full grammar masks computed; the other tokens passed the cheap check of their unmasked greedy pick. */
  masks: number;
  accepted: number;
  drafted: number;
  completed: number;
}

export interface StructuredResult {
  requests: number;
  off: ArmTotals;
  on: ArmTotals;
  /** Decode tokens/s on ÷ off (prefill excluded), and tokens per forward with lookahead on. */
  speedup: number;
  tokensPerStep: number;
  maskMicrosPerToken: { off: number; on: number };
  /** A full mask alone (computed and applied), replaying the answers through a fresh matcher with no model running. */
  replayMicrosPerMask: number;
  identical: number;
}

export async function runStructured(opts: StructuredOptions, log: (line: string) => void): Promise<StructuredResult> {
  const articles = readJsonl(opts.workload, articleOf, 'a "query" or "text" string').slice(0, opts.requests);
  if (articles.length === 0) throw new BenchError(`${opts.workload}: no articles (expected JSONL with "query" or "text")`, 2);
  const config = loadConfig([...(opts.model ? ['--model', opts.model] : []), '--log-level', 'silent']);
  const engine = await createEngine(toEngineOptions(config), () => {});
  const off: ArmTotals = zero();
  const on: ArmTotals = zero();
  let identical = 0;
  const answers: number[][] = [];
  let replayMicrosPerMask = 0;
  try {
    const modelId = engine.models[0].id;
    const tok = engine.tokenizer(modelId);
    const constraint: OutputConstraint = { type: 'json_schema', schema: EXTRACTION_SCHEMA as unknown as Record<string, unknown> };
    const offOptions: LookaheadOptions = { ...opts.lookahead, enabled: false };
    for (const [i, article] of articles.entries()) {
      const prompt = `Extract the title, the date and the people named in this article as JSON.\n\n${article}`;
      const promptIds = tok.encode(tok.renderChat([{ role: 'user', content: prompt }]), { addSpecialTokens: !tok.chatTemplateAddsBos });
      const spec = { promptIds, maxTokens: opts.maxTokens, constraint };
      const runOff = () => run(engine, modelId, { ...spec, lookahead: offOptions, tenant: 'bench-off' });
      const runOn = () => run(engine, modelId, { ...spec, lookahead: opts.lookahead, tenant: 'bench-on' });
      let a: Awaited<ReturnType<typeof runOff>>;
      let b: Awaited<ReturnType<typeof runOn>>;
      if (i % 2 === 0) {
        a = await runOff();
        b = await runOn();
      } else {
        b = await runOn();
        a = await runOff();
      }
      add(off, a.result);
      add(on, b.result);
      if (a.ids.join() === b.ids.join()) identical++;
      if (a.result.finishReason === 'stop') answers.push(a.ids);
      log(`${i + 1}/${articles.length}: ${b.result.completionTokens} tokens, ${b.result.lookahead.tokensPerStep.toFixed(2)} per step: ${b.text.slice(0, 100)}`);
    }
    replayMicrosPerMask = await replayMasks(engine, modelId, constraint, answers);
  } finally {
    await engine.close(1000);
  }
  const rate = (t: ArmTotals) => t.decodeTokens / Math.max(1e-9, t.decodeSeconds);
  return {
    requests: articles.length,
    off,
    on,
    speedup: rate(on) / rate(off),
    tokensPerStep: on.decodeTokens / Math.max(1, on.steps),
    maskMicrosPerToken: { off: (off.maskSeconds / Math.max(1, off.tokens)) * 1e6, on: (on.maskSeconds / Math.max(1, on.tokens)) * 1e6 },
    replayMicrosPerMask,
    identical,
  };
}

/** Time of one full mask on this thread, over the tokens of the given answers (the grammar's real states). */
async function replayMasks(engine: Engine, modelId: string, constraint: OutputConstraint, answers: number[][]): Promise<number> {
  const tok = engine.tokenizer(modelId);
  const vocab = tok.vocabSize;
  const grammars = new GrammarCompilers(vocab, tok.eosTokenIds);
  grammars.setVocab(Array.from({ length: vocab }, (_, id) => tok.tokenBytes(id)));
  const row = new Float32Array(vocab);
  let seconds = 0;
  let masks = 0;
  for (const ids of answers) {
    const filter = await grammars.filter(constraint, 'bench');
    for (const id of ids) {
      const t0 = performance.now();
      filter.mask(row);
      seconds += (performance.now() - t0) / 1000;
      masks++;
      if (!filter.accept(id)) break;
    }
    filter.dispose();
  }
  return (seconds / Math.max(1, masks)) * 1e6;
}

export function renderStructured(r: StructuredResult, command: string): string {
  const row = (name: string, t: ArmTotals) =>
    `| ${name} | ${t.tokens} | ${t.steps} | ${(t.decodeTokens / Math.max(1, t.steps)).toFixed(2)} | ${(t.decodeTokens / Math.max(1e-9, t.decodeSeconds)).toFixed(0)} | ${((t.maskSeconds / Math.max(1, t.tokens)) * 1e6).toFixed(1)} | ${((t.masks / Math.max(1, t.tokens)) * 100).toFixed(0)}% | ${t.completed}/${r.requests} |`;
  return [
    `# Structured extraction (json_schema), lookahead off vs on`,
    '',
    `\`${command}\``,
    '',
    '| arm | tokens | steps | tokens/step | decode tok/s | grammar µs/token | tokens needing a full mask | completed |',
    '|---|---|---|---|---|---|---|---|',
    row('off', r.off),
    row('on', r.on),
    '',
    `decode speed-up on/off: **${r.speedup.toFixed(2)}×**; tokens per step: **${r.tokensPerStep.toFixed(2)}**; identical outputs: ${r.identical}/${r.requests}`,
    '',
    `one full grammar mask alone (replayed over the answers, no model running): ${r.replayMicrosPerMask.toFixed(1)} µs`,
    '',
  ].join('\n');
}

function run(engine: Engine, modelId: string, spec: Omit<JobSpec, 'sampling' | 'stop' | 'logprobs'>) {
  return collectJob(engine.submit(modelId, { ...spec, sampling: GREEDY, stop: [], logprobs: null }));
}

function articleOf(row: unknown): string | null {
  if (row === null || typeof row !== 'object') return null;
  const { query, text } = row as { query?: unknown; text?: unknown };
  const raw = typeof query === 'string' ? query : typeof text === 'string' ? text : null;
  if (raw === null) return null;
  // llma's rows are Alpaca-style prompts: the article is the "### Input:" section.
  const input = /### Input:\n([\s\S]*?)(\n### Response:|$)/.exec(raw);
  return (input ? input[1] : raw).trim().slice(0, ARTICLE_CHARS);
}

function zero(): ArmTotals {
  return { tokens: 0, decodeTokens: 0, steps: 0, decodeSeconds: 0, maskSeconds: 0, masks: 0, accepted: 0, drafted: 0, completed: 0 };
}

function add(t: ArmTotals, r: JobResult): void {
  t.tokens += r.completionTokens;
  t.decodeTokens += Math.max(0, r.completionTokens - 1);
  t.steps += r.lookahead.steps;
  t.decodeSeconds += r.lookahead.decodeSeconds;
  t.maskSeconds += r.lookahead.maskSeconds ?? 0;
  t.masks += r.lookahead.masks ?? 0;
  t.accepted += r.lookahead.acceptedTokens;
  t.drafted += r.lookahead.draftTokens;
  if (r.finishReason === 'stop') t.completed++;
}
