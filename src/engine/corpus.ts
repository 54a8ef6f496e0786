import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { InvalidRequestError } from '../errors.js';

/**
 * Documents for the global trie: a JSONL file (one object per line with a "text", "content" or "document" field,
 * or a plain JSON string), or a directory of .txt / .md / .jsonl files.
 */
export function readCorpus(path: string): string[] {
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .filter((f) => ['.txt', '.md', '.jsonl'].includes(extname(f)))
      .sort()
      .flatMap((f) => (extname(f) === '.jsonl' ? readJsonl(join(path, f)) : [readFileSync(join(path, f), 'utf8')]));
  }
  return extname(path) === '.jsonl' ? readJsonl(path) : [readFileSync(path, 'utf8')];
}

function readJsonl(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line, i) => [line.trim(), i + 1] as const)
    .filter(([line]) => line)
    .map(([line, n]) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new InvalidRequestError(`${path}:${n}: not valid JSON`);
      }
      const text = typeof value === 'string' ? value : documentText(value);
      if (text === null) throw new InvalidRequestError(`${path}:${n}: needs a "text", "content" or "document" string`);
      return text;
    });
}

function documentText(value: unknown): string | null {
  if (!value || typeof value !== 'object') return null;
  const v = value as Record<string, unknown>;
  for (const key of ['text', 'content', 'document']) if (typeof v[key] === 'string') return v[key] as string;
  return null;
}
