import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { BenchError } from './errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

/** One unit of work: a chat request, optionally followed by more user turns in the same session. */
export interface WorkloadItem {
  id: string;
  source: string;
  messages: ChatMessage[];
  /** Sent as OpenAI `prediction` (code editing: the code being edited). */
  prediction?: string;
  /** A reference answer: used to warm the global trie, never sent as part of a measured request. */
  reference?: string;
  /** Later user turns; each is sent after the previous answer, with the conversation so far, in one session. */
  followUps?: string[];
}

export type WorkloadShape = 'plain' | 'sessions' | 'repeat';

export interface WorkloadOptions {
  shape: WorkloadShape;
  /** spec-bench categories to keep (e.g. writing, roleplay); empty = all. */
  categories: string[];
  /** Copies per query for the `repeat` shape. */
  repeat: number;
}

const message = z.object({ role: z.string(), content: z.union([z.string(), z.array(z.object({ text: z.string().optional() }).loose())]) }).loose();
const chatRow = z
  .object({
    messages: z.array(message).min(1),
    source: z.string().optional(),
    reference: z.string().optional(),
    prediction: z.union([z.string(), z.object({ content: z.string() }).loose()]).optional(),
    follow_ups: z.array(z.string()).optional(),
  })
  .loose();
const llmaRow = z.object({ query: z.string(), docs: z.array(z.string()), result: z.object({ text: z.string() }).loose().optional() }).loose();
const specBenchRow = z.object({ question_id: z.union([z.number(), z.string()]), category: z.string(), turns: z.array(z.string()).min(1) }).loose();

/** Follow-up turns for the `sessions` shape: each sends the same documents again, as a RAG chat does. */
const SESSION_FOLLOW_UPS = [
  'Using only the same context, answer again in one sentence.',
  'Quote the passage from the context that supports your answer.',
];

/**
 * Reads a workload: a JSONL of chat requests (`{messages, reference?, prediction?}`), or one of the shared
 * datasets in its own format — LLMA rows (`{query, docs, result}`), Spec-Bench questions (`{category, turns}`),
 * or CodeXGLUE `.buggy` lines (code editing: the buggy method is also sent as the prediction). A broken line
 * stops everything with its line number: a benchmark over a silently shortened workload would mislead.
 */
export function loadWorkload(path: string, options: WorkloadOptions): WorkloadItem[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BenchError(`workload ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const items = path.endsWith('.buggy') ? fromBuggy(path, text) : fromJsonl(path, text, options.categories);
  if (items.length === 0) throw new BenchError(`workload ${path}: no requests in it${options.categories.length ? ` for categories ${options.categories.join(', ')}` : ''}`);
  return shape(items, options);
}

function fromJsonl(path: string, text: string, categories: string[]): WorkloadItem[] {
  const name = basename(path);
  const items: WorkloadItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const where = `workload ${path} line ${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new BenchError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const id = `${name}:${i + 1}`;
    const chat = chatRow.safeParse(row);
    if (chat.success) {
      const d = chat.data;
      const prediction = typeof d.prediction === 'string' ? d.prediction : d.prediction?.content;
      items.push({
        id,
        source: d.source ?? name,
        messages: d.messages.map((m) => ({ role: m.role, content: textOf(m.content) })),
        ...(prediction !== undefined ? { prediction } : {}),
        ...(d.reference !== undefined ? { reference: d.reference } : {}),
        ...(d.follow_ups?.length ? { followUps: d.follow_ups } : {}),
      });
      continue;
    }
    const llma = llmaRow.safeParse(row);
    if (llma.success) {
      items.push(fromLlma(id, name, llma.data));
      continue;
    }
    const spec = specBenchRow.safeParse(row);
    if (spec.success) {
      if (categories.length > 0 && !categories.includes(spec.data.category)) continue;
      const [first, ...rest] = spec.data.turns;
      items.push({ id, source: `spec-bench/${spec.data.category}`, messages: [{ role: 'user', content: first }], ...(rest.length ? { followUps: rest } : {}) });
      continue;
    }
    throw new BenchError(`${where}: not a chat request ({"messages": [...]}) nor a known dataset row ({query, docs} or {category, turns}): ${chat.error.issues[0]?.message ?? 'unrecognised shape'}`);
  }
  return items;
}

function fromLlma(id: string, name: string, row: z.infer<typeof llmaRow>): WorkloadItem {
  // CNN/DM rows carry the whole instruction with the article in `query`; RAG rows keep passages apart.
  const selfContained = row.docs.length === 0 || row.docs.every((d) => row.query.includes(d.slice(0, 80)));
  const content = selfContained ? row.query : `Passages:\n${row.docs.map((d, i) => `[${i + 1}] ${d}`).join('\n')}\n\nQuestion: ${row.query}`;
  const reference = row.result?.text.replace(/^\d+####/, '').trim();
  return {
    id,
    source: `llma/${name.replace(/\.jsonl$/, '')}`,
    messages: [
      ...(selfContained ? [] : [{ role: 'system', content: 'Answer the question using the passages.' }]),
      { role: 'user', content },
    ],
    ...(reference ? { reference } : {}),
  };
}

/** CodeXGLUE code refinement: the buggy method goes in the prompt and as the prediction; `.fixed` holds references. */
function fromBuggy(path: string, text: string): WorkloadItem[] {
  const fixedPath = path.replace(/\.buggy$/, '.fixed');
  const fixed = existsSync(fixedPath) ? readFileSync(fixedPath, 'utf8').split('\n') : [];
  const items: WorkloadItem[] = [];
  text.split('\n').forEach((line, i) => {
    const code = line.trim();
    if (code === '') return;
    const reference = fixed[i]?.trim();
    items.push({
      id: `${basename(path)}:${i + 1}`,
      source: 'codexglue-code-refinement',
      messages: [{ role: 'user', content: `Fix the bug in this Java method:\n${code}` }],
      prediction: code,
      ...(reference ? { reference } : {}),
    });
  });
  return items;
}

function textOf(content: string | { text?: string }[]): string {
  return typeof content === 'string' ? content : content.map((p) => p.text ?? '').join('');
}

function shape(items: WorkloadItem[], options: WorkloadOptions): WorkloadItem[] {
  switch (options.shape) {
    case 'plain':
      return items;
    case 'sessions':
      return items.map((it) => ({ ...it, followUps: [...(it.followUps ?? []), ...SESSION_FOLLOW_UPS] }));
    case 'repeat': {
      if (!Number.isInteger(options.repeat) || options.repeat < 1) throw new BenchError(`--repeat must be a positive integer (got ${options.repeat})`);
      // Rounds over the whole set, so a repeat arrives after its first answer has reached the global trie.
      const out: WorkloadItem[] = [];
      for (let r = 0; r < options.repeat; r++) for (const it of items) out.push(r === 0 ? it : nearDuplicate(it, r));
      return out;
    }
  }
}

/** Same question with a different wrapper, so an exact-match response cache cannot serve it. */
function nearDuplicate(item: WorkloadItem, round: number): WorkloadItem {
  const wrappers = ['Please answer: ', 'Question again: ', 'Once more, '];
  const messages = item.messages.map((m, i) =>
    i === item.messages.length - 1 && m.role === 'user' ? { ...m, content: `${wrappers[(round - 1) % wrappers.length]}${m.content}` } : m,
  );
  return { ...item, id: `${item.id}#${round}`, messages };
}

/** Splits off the first `count` items, whose reference answers (and prompts) warm the global trie before measuring. */
export function splitWarmup(items: WorkloadItem[], count: number): { warmup: WorkloadItem[]; measured: WorkloadItem[] } {
  if (count >= items.length) throw new BenchError(`--warmup ${count} leaves nothing to measure: the workload has ${items.length} requests`);
  return { warmup: items.slice(0, count), measured: items.slice(count) };
}

/** The documents a warm-up posts: reference answers where the dataset has them, else the prompts. */
export function warmupDocuments(items: WorkloadItem[]): string[] {
  return items.map((it) => it.reference ?? it.messages.map((m) => m.content).join('\n')).filter((d) => d.length > 0);
}
