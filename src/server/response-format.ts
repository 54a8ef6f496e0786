import { validateConstraint } from '../engine/grammar/index.js';
import type { OutputConstraint } from '../engine/types.js';
import { InvalidRequestError } from '../errors.js';

/**
 * `response_format` of chat completions (and, as vLLM accepts it, of completions) → the engine's constraint, checked:
 * `text` or absent = none; `json_object`; `json_schema: {name, schema, strict?, description?}`.
 */
export function constraintOfResponseFormat(format: { type: string; [key: string]: unknown } | null | undefined): OutputConstraint | null {
  if (!format || format.type === 'text') return null;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type !== 'json_schema') {
    throw new InvalidRequestError(
      `Invalid value: '${format.type.slice(0, 80)}'. Supported values are: 'text', 'json_object', and 'json_schema'.`,
      'response_format.type',
      'invalid_value',
    );
  }
  const spec = format.json_schema;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new InvalidRequestError("Missing required parameter: 'response_format.json_schema'.", 'response_format.json_schema', 'missing_required_parameter');
  }
  const { name, schema, strict } = spec as Record<string, unknown>;
  if (typeof name !== 'string') {
    throw new InvalidRequestError("Missing required parameter: 'response_format.json_schema.name'.", 'response_format.json_schema.name', 'missing_required_parameter');
  }
  if (strict !== undefined && strict !== null && typeof strict !== 'boolean') {
    throw new InvalidRequestError("Invalid type for 'response_format.json_schema.strict': expected a boolean.", 'response_format.json_schema.strict');
  }
  if (schema === undefined || schema === null) {
    throw new InvalidRequestError("Missing required parameter: 'response_format.json_schema.schema'.", 'response_format.json_schema.schema', 'missing_required_parameter');
  }
  const constraint: OutputConstraint = { type: 'json_schema', schema: schema as Record<string, unknown>, name, ...(typeof strict === 'boolean' && { strict }) };
  validateConstraint(constraint, 'response_format.json_schema.schema');
  return constraint;
}
