import { describe, expect, it } from 'vitest';
import { GrammarCompilers } from '../../src/engine/grammar/compiler.js';
import { constraintHints } from '../../src/engine/grammar/hints.js';
import { loadXGrammar } from '../../src/engine/grammar/xgrammar.js';
import { isUtf8Fragment, Utf8Guard } from '../../src/engine/grammar/utf8.js';
import { validateConstraint } from '../../src/engine/grammar/validate.js';
import { InvalidSchemaError, UnsupportedSchemaError } from '../../src/errors.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('isUtf8Fragment', () => {
  it.each([
    ['ASCII', bytes(0x7b, 0x22), true],
    ['a whole 2-byte character', bytes(0xc3, 0xa9), true],
    ['a tail begun by an earlier token', bytes(0xa9, 0x41), true],
    ['a beginning finished by a later token', bytes(0x41, 0xe2, 0x82), true],
    ['C0 (overlong lead)', bytes(0xc0, 0x80), false],
    ['F5 (beyond Unicode)', bytes(0xf5), false],
    ['an overlong 3-byte form', bytes(0xe0, 0x80, 0x80), false],
    ['a surrogate', bytes(0xed, 0xa0, 0x80), false],
    ['a lead without its continuation', bytes(0xc3, 0x41), false],
  ])('%s', (_, b, valid) => expect(isUtf8Fragment(b)).toBe(valid));
});

describe('Utf8Guard', () => {
  // A byte vocabulary plus one special (empty) token: what the synthetic model's tokenizer gives the grammar.
  const vocab = [...Array.from({ length: 256 }, (_, b) => bytes(b)), ''];
  const guard = new Utf8Guard(vocab);
  const masked = (state: number) => {
    const row = new Float32Array(vocab.length);
    guard.mask(row, state);
    return [...row.keys()].filter((i) => row[i] === Number.NEGATIVE_INFINITY);
  };

  it('always masks bytes that are never UTF-8', () => {
    expect(masked(0)).toEqual([0xc0, 0xc1, ...Array.from({ length: 11 }, (_, i) => 0xf5 + i)]);
  });

  it('after E0 masks the continuation bytes of overlong forms, and after ED those of surrogates', () => {
    expect(masked(guard.stateAfter(0xe0))).toEqual(expect.arrayContaining([0x80, 0x9f]));
    expect(masked(guard.stateAfter(0xe0))).not.toContain(0xa0);
    expect(masked(guard.stateAfter(0xed))).toEqual(expect.arrayContaining([0xa0, 0xbf]));
    expect(masked(guard.stateAfter(0xed))).not.toContain(0x9f);
    expect(guard.stateAfter(0x41)).toBe(0);
  });
});

describe('constraintHints', () => {
  it("gives the schema's keys as the compact layout writes them, and its enum and const values", () => {
    const hints = constraintHints({
      type: 'json_schema',
      schema: {
        type: 'object',
        properties: { title: { type: 'string' }, kind: { enum: ['news', 'sport'] }, meta: { type: 'object', properties: { v: { const: 2 } } } },
      },
    });
    expect(hints).toEqual(expect.arrayContaining(['{"title": ', ', "kind": ', ', "meta": ', '"news"', '"sport"', '{"v": ', '2']));
    expect(constraintHints({ type: 'json_object' })).toEqual([]);
  });
});

describe('validateConstraint', () => {
  const check = (schema: Record<string, unknown>) => () => validateConstraint({ type: 'json_schema', schema, name: 'x' }, 'response_format.json_schema.schema');

  it('accepts what SDKs send: draft-07 (zod-to-json-schema) and 2020-12 with $defs', () => {
    expect(check({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { a: { type: 'string', maxLength: 3 } }, additionalProperties: false })).not.toThrow();
    expect(check({ type: 'object', properties: { p: { $ref: '#/$defs/p' } }, $defs: { p: { type: 'integer', minimum: 0 } } })).not.toThrow();
  });

  it.each([
    ['a wrong type name', { type: 'strnig' }],
    ['required that is not a list', { type: 'object', required: 'a' }],
    ['a $ref to nothing', { type: 'object', properties: { a: { $ref: '#/$defs/none' } } }],
    ['a pattern the regex engine refuses', { type: 'string', pattern: '(ab' }],
  ])('refuses %s as invalid', (_, schema) => {
    expect(check(schema)).toThrow(InvalidSchemaError);
  });

  it.each([
    ['not', { not: { type: 'string' } }, "'not'"],
    ['uniqueItems', { type: 'array', uniqueItems: true }, "'uniqueItems'"],
    ['a remote $ref', { $ref: 'https://example.com/s.json' }, '$ref'],
    ['an unknown format', { type: 'string', format: 'color' }, 'format: color'],
    ['bounds on a number', { type: 'number', maximum: 1.5 }, 'maximum'],
    ['allOf of two schemas', { allOf: [{ type: 'object' }, { required: ['a'] }] }, 'allOf'],
  ])('refuses %s by name', (_, schema, feature) => {
    expect(check(schema)).toThrow(UnsupportedSchemaError);
    expect(check(schema)).toThrow(feature);
  });

  it('blames the name param for a bad name', () => {
    try {
      validateConstraint({ type: 'json_schema', schema: {}, name: 'has spaces' }, 'response_format.json_schema.schema');
      expect.unreachable();
    } catch (err) {
      expect((err as InvalidSchemaError).param).toBe('response_format.json_schema.name');
    }
  });
});

describe('GrammarCompilers', () => {
  it('compiles a schema once per tenant: a grammar cached for one tenant never speeds up another', async () => {
    const xgrammar = await loadXGrammar();
    const original = xgrammar.GrammarCompiler.createGrammarCompiler;
    let compiles = 0;
    const cacheFlags: (boolean | undefined)[] = [];
    xgrammar.GrammarCompiler.createGrammarCompiler = async (info, cacheEnabled) => {
      cacheFlags.push(cacheEnabled);
      const compiler = await original.call(xgrammar.GrammarCompiler, info, cacheEnabled);
      const compile = compiler.compileJSONSchema.bind(compiler);
      compiler.compileJSONSchema = (...args) => {
        compiles++;
        return compile(...args);
      };
      return compiler;
    };
    try {
      const grammars = new GrammarCompilers(257, [256]);
      grammars.setVocab([...Array.from({ length: 256 }, (_, b) => bytes(b)), null]);
      const constraint = { type: 'json_schema', schema: { type: 'object', properties: { a: { type: 'integer' } } } } as const;
      for (const tenant of ['a', 'a', 'b']) (await grammars.filter(constraint, tenant)).dispose();
      expect(compiles).toBe(2);
      // xgrammar's own cache is keyed by the schema alone.
      expect(cacheFlags).toEqual([false]);
    } finally {
      xgrammar.GrammarCompiler.createGrammarCompiler = original;
    }
  });
});
