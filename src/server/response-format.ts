import { validateConstraint } from '../engine/grammar/index.js';
import type { Engine, OutputConstraint } from '../engine/types.js';
import { InvalidRequestError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer/types.js';

const longestToken = new WeakMap<TextTokenizer, number>();

/**
 * The longest output the model can write, in bytes: its whole context of its vocabulary's longest token. A schema's
 * enum or const value longer than that could never be matched (see validateConstraint).
 */
export function literalBound(engine: Engine, modelId: string): number {
  const tok = engine.tokenizer(modelId);
  let longest = longestToken.get(tok);
  if (longest === undefined) {
    longest = 1;
    for (let id = 0; id < tok.vocabSize; id++) longest = Math.max(longest, tok.tokenBytes(id)?.length ?? 0);
    longestToken.set(tok, longest);
  }
  return engine.models.find((m) => m.id === modelId)!.contextLength * longest;
}

/**
 * `response_format` of chat completions (and, as vLLM accepts it, of completions) → the engine's constraint, checked:
 * `text` or absent = none; `json_object`; `json_schema: {name, schema, strict?, description?}`.
 */
export function constraintOfResponseFormat(format: { type: string; [key: string]: unknown } | null | undefined, maxLiteralBytes: number): OutputConstraint | null {
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
  validateConstraint(constraint, 'response_format.json_schema.schema', maxLiteralBytes);
  return constraint;
}
