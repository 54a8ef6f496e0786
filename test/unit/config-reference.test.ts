import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPTIONS, usage } from '../../src/config/options.js';
import { configurationReference } from '../../src/config/reference.js';

const DOC = join(import.meta.dirname, '../../docs/configuration.md');

describe('docs/configuration.md', () => {
  it('is what the schema generates (regenerate: npm run cli -- config-reference > docs/configuration.md)', () => {
    expect(readFileSync(DOC, 'utf8')).toBe(configurationReference());
  });

  it('names every flag and env var, in the order --help lists them', () => {
    const doc = readFileSync(DOC, 'utf8');
    const help = usage();
    const flags = OPTIONS.filter((o) => o.flag).map((o) => `--${o.flag}`);
    const inDoc = flags.map((f) => doc.indexOf(`\`${f}\``));
    const inHelp = flags.map((f) => help.indexOf(`${f} `));
    expect(inDoc.every((i) => i >= 0)).toBe(true);
    expect(inHelp.every((i) => i >= 0)).toBe(true);
    const order = (positions: number[]) => flags.map((f, i) => [f, positions[i]] as const).sort((a, b) => a[1] - b[1]).map(([f]) => f);
    expect(order(inDoc)).toEqual(order(inHelp));
    for (const o of OPTIONS) expect(doc).toContain(`\`${o.env}\``);
  });
});
