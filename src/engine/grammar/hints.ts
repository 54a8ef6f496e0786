import type { OutputConstraint } from '../types.js';

/** Enough for any schema a client writes by hand; a generated giant one gets its first this-many pieces. */
const MAX_HINTS = 256;

/**
 * Text the schema itself says the output will contain, in the grammar's compact layout: each property's key as it
 * opens the object (`{"title": `) or follows a value (`, "date": `), and each enum or const value. These are natural
 * drafts for the request scope: a model under the grammar writes them verbatim.
 */
export function constraintHints(constraint: OutputConstraint): string[] {
  if (constraint.type !== 'json_schema') return [];
  const hints = new Set<string>();
  const seen = new Set<unknown>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object' || seen.has(node) || hints.size >= MAX_HINTS) return;
    seen.add(node);
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    const schema = node as Record<string, unknown>;
    const properties = schema.properties;
    if (properties !== null && typeof properties === 'object' && !Array.isArray(properties)) {
      Object.keys(properties).forEach((key, i) => hints.add(`${i === 0 ? '{' : ', '}${JSON.stringify(key)}: `));
    }
    if (Array.isArray(schema.enum)) for (const value of schema.enum) hints.add(JSON.stringify(value));
    if ('const' in schema) hints.add(JSON.stringify(schema.const));
    for (const value of Object.values(schema)) visit(value);
  };
  visit(constraint.schema);
  return [...hints].slice(0, MAX_HINTS);
}
