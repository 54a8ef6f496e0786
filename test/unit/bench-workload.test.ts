import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchError } from '../../bench/errors.js';
import { loadWorkload, splitWarmup, warmupDocuments } from '../../bench/workload.js';
import { SHARED_DATA } from '../helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-workload-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
const plain = { shape: 'plain' as const, categories: [], repeat: 3 };

describe('loadWorkload', () => {
  it('reads chat rows, LLMA rows and Spec-Bench rows', () => {
    const path = file(
      'mixed.jsonl',
      [
        JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }], reference: 'hi', prediction: { type: 'content', content: 'hi there' } }),
        '',
        JSON.stringify({ query: 'what is x', docs: ['x is a letter', 'y too'], result: { text: '1####x is a letter' } }),
        JSON.stringify({ question_id: 1, category: 'writing', turns: ['write a poem', 'shorter'] }),
      ].join('\n'),
    );
    const items = loadWorkload(path, plain);
    expect(items).toHaveLength(3);
    expect(items[0]).toMatchObject({ messages: [{ role: 'user', content: 'hello' }], reference: 'hi', prediction: 'hi there' });
    expect(items[1].messages.at(-1)!.content).toContain('[1] x is a letter');
    expect(items[1].messages.at(-1)!.content).toContain('Question: what is x');
    expect(items[1].reference).toBe('x is a letter');
    expect(items[2]).toMatchObject({ source: 'spec-bench/writing', messages: [{ role: 'user', content: 'write a poem' }], followUps: ['shorter'] });
  });

  it('keeps only the requested Spec-Bench categories', () => {
    const path = file('spec.jsonl', [JSON.stringify({ question_id: 1, category: 'writing', turns: ['a'] }), JSON.stringify({ question_id: 2, category: 'math', turns: ['b'] })].join('\n'));
    expect(loadWorkload(path, { ...plain, categories: ['writing'] }).map((i) => i.messages[0].content)).toEqual(['a']);
    expect(() => loadWorkload(path, { ...plain, categories: ['roleplay'] })).toThrow(/no requests/);
  });

  it('sends buggy code as the prediction and reads references from .fixed', () => {
    const path = file('t.buggy', 'int f ( ) { return 1 ; }\nint g ( ) { }\n');
    writeFileSync(join(dir, 't.fixed'), 'int f ( ) { return 2 ; }\nint g ( ) { return 0 ; }\n');
    const items = loadWorkload(path, plain);
    expect(items).toHaveLength(2);
    expect(items[0].prediction).toBe('int f ( ) { return 1 ; }');
    expect(items[0].messages[0].content).toContain('Fix the bug');
    expect(items[1].reference).toBe('int g ( ) { return 0 ; }');
  });

  it('names the broken line', () => {
    const bad = file('bad.jsonl', `${JSON.stringify({ messages: [{ role: 'user', content: 'a' }] })}\n{"messages": [\n`);
    expect(() => loadWorkload(bad, plain)).toThrow(BenchError);
    expect(() => loadWorkload(bad, plain)).toThrow(/bad\.jsonl line 2: not valid JSON/);
    const odd = file('odd.jsonl', '{"foo": 1}\n');
    expect(() => loadWorkload(odd, plain)).toThrow(/line 1: not a chat request/);
    expect(() => loadWorkload(join(dir, 'missing.jsonl'), plain)).toThrow(/cannot read it \(ENOENT\)/);
  });

  it('builds sessions and near-duplicate repeats', () => {
    const path = file('two.jsonl', ['a', 'b'].map((c) => JSON.stringify({ messages: [{ role: 'user', content: c }] })).join('\n'));
    const sessions = loadWorkload(path, { ...plain, shape: 'sessions' });
    expect(sessions[0].followUps!.length).toBeGreaterThanOrEqual(2);
    const repeats = loadWorkload(path, { ...plain, shape: 'repeat', repeat: 3 });
    expect(repeats.map((i) => i.messages[0].content)).toEqual(['a', 'b', 'Please answer: a', 'Please answer: b', 'Question again: a', 'Question again: b']);
  });

  it('splits off a warm-up set and feeds its references', () => {
    const items = loadWorkload(file('w.jsonl', ['a', 'b', 'c'].map((c) => JSON.stringify({ messages: [{ role: 'user', content: c }], reference: `ref ${c}` })).join('\n')), plain);
    const { warmup, measured } = splitWarmup(items, 2);
    expect(warmupDocuments(warmup)).toEqual(['ref a', 'ref b']);
    expect(measured).toHaveLength(1);
    expect(() => splitWarmup(items, 3)).toThrow(/leaves nothing to measure/);
  });
});

const DATA = join(SHARED_DATA, 'datasets');
const shared = ['rag-eval/dev.jsonl', 'llma/rag.jsonl', 'llma/cnndm.jsonl', 'spec-bench/question.jsonl', 'codexglue-code-refinement/small/test.buggy-fixed.buggy'].map((p) => join(DATA, p));
const haveData = shared.every((p) => existsSync(p));
if (!haveData) console.warn(`bench-workload: shared datasets under ${DATA} are absent; skipping the real-dataset checks`);

describe.skipIf(!haveData)('the shared datasets load as workloads', () => {
  it.each(shared)('%s', (path) => {
    const items = loadWorkload(path, { ...plain, categories: path.includes('spec-bench') ? ['writing', 'roleplay'] : [] });
    expect(items.length).toBeGreaterThanOrEqual(path.includes('spec-bench') ? 20 : 100);
    for (const it of items) expect(it.messages.at(-1)!.content.length).toBeGreaterThan(0);
    if (path.endsWith('.buggy')) expect(items.every((i) => i.prediction && i.reference)).toBe(true);
    if (path.includes('cnndm')) expect(items[0].messages).toHaveLength(1);
  });
});
