import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchError } from '../errors.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { reportSchema, type Report } from './schema.js';

/** Validates against the schema first: a report that does not match its own version is a bug, not an output. */
export function writeReport(dir: string, report: Report): { json: string; html: string; md: string } {
  const parsed = reportSchema.safeParse(report);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BenchError(`internal: the report does not match schema v${report.schema_version} at ${issue.path.join('.')}: ${issue.message}`);
  }
  mkdirSync(dir, { recursive: true });
  const paths = { json: join(dir, 'report.json'), html: join(dir, 'report.html'), md: join(dir, 'report.md') };
  writeFileSync(paths.json, `${JSON.stringify(parsed.data, null, 2)}\n`);
  writeFileSync(paths.html, renderHtml(parsed.data));
  writeFileSync(paths.md, renderMarkdown(parsed.data));
  return paths;
}
