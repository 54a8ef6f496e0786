import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { readJsonl } from './jsonl.js';

/**
 * Documents for the global trie: a JSONL file (one object per line with a "text", "content" or "document" field,
 * or a plain JSON string), or a directory of .txt / .md / .jsonl files.
 */
export function readCorpus(path: string): string[] {
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .filter((f) => ['.txt', '.md', '.jsonl'].includes(extname(f)))
      .sort()
      .flatMap((f) => (extname(f) === '.jsonl' ? readDocuments(join(path, f)) : [readFileSync(join(path, f), 'utf8')]));
  }
  return extname(path) === '.jsonl' ? readDocuments(path) : [readFileSync(path, 'utf8')];
}

function readDocuments(path: string): string[] {
  return readJsonl(path, (value) => (typeof value === 'string' ? value : documentText(value)), 'a "text", "content" or "document" string');
}

function documentText(value: unknown): string | null {
  if (!value || typeof value !== 'object') return null;
  const v = value as Record<string, unknown>;
  for (const key of ['text', 'content', 'document']) if (typeof v[key] === 'string') return v[key] as string;
  return null;
}
