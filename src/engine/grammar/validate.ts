import { Ajv, type Ajv as AjvType } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { InvalidSchemaError, UnsupportedSchemaError } from '../../errors.js';
import type { OutputConstraint } from '../types.js';
import { loadXGrammar } from './xgrammar.js';

/** Validation is synchronous (it runs in the request handler); the grammar engine is loaded with this module. */
const xgrammar = await loadXGrammar();

/**
 * Keywords the grammar engine enforces (or that only annotate). A schema using any other keyword is refused by name:
 * a keyword silently ignored would let through output the client's validator then rejects.
 */
const SUPPORTED = new Set([
  // structure
  'type', 'properties', 'required', 'additionalProperties', 'items', 'prefixItems', 'enum', 'const',
  'anyOf', 'oneOf', 'allOf', '$ref', '$defs', 'definitions', 'unevaluatedProperties', 'unevaluatedItems',
  // bounds
  'minItems', 'maxItems', 'minLength', 'maxLength', 'minProperties', 'maxProperties', 'pattern', 'format',
  'patternProperties', 'propertyNames',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  // annotations
  'title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly',
]);

/** Keywords whose value is a map of subschemas, or a list of them, or one subschema. */
const SCHEMA_MAPS = ['properties', '$defs', 'definitions', 'patternProperties'];
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SCHEMA_ONE = ['items', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'propertyNames'];

/** Numeric bounds xgrammar turns into digit patterns, exactly only for integers. */
const NUMERIC_BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];

/** Formats the grammar engine has rules for; others would be accepted as any string. */
const FORMATS = new Set(['date', 'time', 'date-time', 'duration', 'email', 'ipv4', 'ipv6', 'hostname', 'uuid', 'uri', 'uri-reference', 'uri-template', 'json-pointer', 'relative-json-pointer']);

const MAX_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** Meta-schema validators by draft: SDKs send draft-07 (zod-to-json-schema) or 2020-12 (Pydantic, zod 4). */
const metaValidators = new Map<string, AjvType>();

function metaValidatorFor(schema: Record<string, unknown>): AjvType {
  const draft = typeof schema.$schema === 'string' && schema.$schema.includes('draft-07') ? 'draft-07' : '2020-12';
  let ajv = metaValidators.get(draft);
  if (!ajv) {
    const options = { strict: false, validateSchema: true, allErrors: false } as const;
    ajv = draft === 'draft-07' ? new Ajv(options) : new Ajv2020(options);
    metaValidators.set(draft, ajv);
  }
  return ajv;
}

/**
 * Checks a client-given constraint before any work is queued: the schema must be a valid JSON schema (draft 2020-12
 * meta-schema) and use only what constrained decoding can enforce, and none of its enum or const values may be longer
 * than `maxLiteralBytes` (the longest output the model can write: see literalBound). Throws InvalidSchemaError or
 * UnsupportedSchemaError with `param` pointing into the request (e.g. `response_format.json_schema.schema`).
 */
export function validateConstraint(constraint: OutputConstraint, param: string, maxLiteralBytes = Infinity): void {
  if (constraint.type === 'json_object') return;
  const { schema, name } = constraint;
  if (name !== undefined && !MAX_NAME.test(name)) {
    const nameParam = param.endsWith('.schema') ? `${param.slice(0, -'.schema'.length)}.name` : param;
    throw new InvalidSchemaError(`schema name ${JSON.stringify(name.slice(0, 80))} must be 1-64 characters of a-z, A-Z, 0-9, _ or -`, nameParam);
  }
  if (!isPlainObject(schema)) throw new InvalidSchemaError('the JSON schema must be an object', param);
  // First: megabytes of literal cost seconds in the meta-schema check and the conversion, and far more to compile.
  checkLiterals(schema, maxLiteralBytes, param);
  const meta = metaValidatorFor(schema);
  if (!meta.validateSchema(schema)) {
    const e = meta.errors?.[0];
    throw new InvalidSchemaError(`invalid JSON schema: ${e ? `${e.instancePath || '(root)'} ${e.message}` : 'rejected by the meta-schema'}`, param);
  }
  checkKeywords(schema, schema, param, '#');
  checkConvertible(schema, param);
}

/**
 * The grammar engine's own conversion, which catches what the keyword check cannot (a `pattern` its regex dialect
 * refuses). It reports by printing a line and aborting the call.
 */
function checkConvertible(schema: Record<string, unknown>, param: string): void {
  xgrammar.errorLines.length = 0;
  try {
    xgrammar.schemaToEBNF(JSON.stringify(schema));
  } catch {
    // `[FATAL] /path/file.cc:75: Regex parsing error ...` → `Regex parsing error ...`.
    const line = xgrammar.errorLines.find((l) => l.startsWith('['));
    const why = line?.replace(/^\[\w+\]\s*\S+:\d+:\s*/, '').trim() || 'the grammar engine could not convert it';
    throw new InvalidSchemaError(`invalid JSON schema: ${why}`, param);
  } finally {
    xgrammar.errorLines.length = 0;
  }
}

/** Every enum and const value anywhere in the schema (annotations included: a cheap walk, no false refusals). */
function checkLiterals(node: unknown, max: number, param: string): void {
  if (node === null || typeof node !== 'object') return;
  const entries = Array.isArray(node) ? node.map((v) => ['', v] as const) : Object.entries(node);
  for (const [key, value] of entries) {
    const literals = key === 'enum' && Array.isArray(value) ? value : key === 'const' ? [value] : null;
    for (const literal of literals ?? []) {
      const bytes = Buffer.byteLength(JSON.stringify(literal) ?? '');
      if (bytes > max) {
        throw new InvalidSchemaError(`an ${key} value of ${bytes} bytes is longer than any output this model can write (${max} bytes); it could never be matched`, param);
      }
    }
    checkLiterals(value, max, param);
  }
}

function checkKeywords(node: unknown, root: Record<string, unknown>, param: string, where: string): void {
  if (typeof node === 'boolean') return;
  if (!isPlainObject(node)) throw new InvalidSchemaError(`invalid JSON schema at ${where}: a subschema must be an object or a boolean`, param);
  for (const [key, value] of Object.entries(node)) {
    if (!SUPPORTED.has(key)) throw new UnsupportedSchemaError(key, param);
    if (key === 'format' && typeof value === 'string' && !FORMATS.has(value)) throw new UnsupportedSchemaError(`format: ${value}`, param);
    // xgrammar enforces allOf of one schema; of several it warns and falls back to any JSON value.
    if (key === 'allOf' && Array.isArray(value) && value.length > 1) throw new UnsupportedSchemaError('allOf with more than one schema', param);
    if (NUMERIC_BOUNDS.includes(key) && node.type !== 'integer') throw new UnsupportedSchemaError(`${key} (on a type other than integer)`, param);
    if (key === '$ref' && (typeof value !== 'string' || !value.startsWith('#'))) {
      throw new UnsupportedSchemaError(`$ref to ${JSON.stringify(String(value).slice(0, 80))} (only local references starting with #)`, param);
    }
    if (key === '$ref' && resolvePointer(root, value as string) === undefined) {
      throw new InvalidSchemaError(`invalid JSON schema at ${where}: $ref ${JSON.stringify(value)} points to nothing`, param);
    }
    if (SCHEMA_MAPS.includes(key) && isPlainObject(value)) {
      for (const [k, sub] of Object.entries(value)) checkKeywords(sub, root, param, `${where}/${key}/${k}`);
    } else if (SCHEMA_LISTS.includes(key) && Array.isArray(value)) {
      value.forEach((sub, i) => checkKeywords(sub, root, param, `${where}/${key}/${i}`));
    } else if (SCHEMA_ONE.includes(key)) {
      checkKeywords(value, root, param, `${where}/${key}`);
    }
  }
}

/** A JSON pointer (`#/$defs/x`) into the schema itself; undefined when it leads nowhere. */
function resolvePointer(root: Record<string, unknown>, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isPlainObject(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
    if (node === undefined) return undefined;
  }
  return node;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
