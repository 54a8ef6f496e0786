import { readFileSync } from 'node:fs';
import { InvalidRequestError } from '../errors.js';

/**
 * The rows of a JSONL file, each turned into a T by `pick` (null = the row lacks what is needed, described by
 * `expected`). Blank lines are skipped; errors name the file and the 1-based line.
 */
export function readJsonl<T>(path: string, pick: (value: unknown) => T | null, expected: string): T[] {
  const rows: T[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.trim();
      if (!line) return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new InvalidRequestError(`${path}:${i + 1}: not valid JSON`);
      }
      const row = pick(value);
      if (row === null) throw new InvalidRequestError(`${path}:${i + 1}: needs ${expected}`);
      rows.push(row);
    });
  return rows;
}
