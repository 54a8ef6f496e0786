import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCorpus } from '../../src/engine/corpus.js';
import { readJsonl } from '../../src/engine/jsonl.js';
import { InvalidRequestError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'jsonl-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('readJsonl', () => {
  it('skips blank lines and names the real line of a bad row', () => {
    const path = file('a.jsonl', '{"x":1}\n\n   \n{"x":2}\n{broken\n');
    expect(() => readJsonl(path, (v) => v, 'anything')).toThrow(`${path}:5: not valid JSON`);
    expect(() => readJsonl(path, (v) => v, 'anything')).toThrow(InvalidRequestError);
  });

  it('says what a row lacks, on its line', () => {
    const path = file('b.jsonl', '{"x":1}\n\n{"y":2}\n');
    expect(() => readJsonl(path, (v) => ((v as { x?: number }).x ?? null), 'an "x" number')).toThrow(`${path}:3: needs an "x" number`);
  });
});

describe('readCorpus', () => {
  it('reads strings and text/content/document fields from JSONL, and plain files from a directory', () => {
    file('docs.jsonl', '"plain"\n{"text":"t"}\n{"content":"c"}\n{"document":"d"}\n');
    expect(readCorpus(join(dir, 'docs.jsonl'))).toEqual(['plain', 't', 'c', 'd']);
    const docs = mkdtempSync(join(tmpdir(), 'corpus-'));
    writeFileSync(join(docs, 'a.md'), '# notes');
    writeFileSync(join(docs, 'b.jsonl'), '{"text":"row"}\n');
    writeFileSync(join(docs, 'c.bin'), 'ignored');
    expect(readCorpus(docs)).toEqual(['# notes', 'row']);
  });
});
