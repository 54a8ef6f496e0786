import { existsSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult, LookaheadOptions, OutputConstraint } from '../../src/engine/types.js';
import { CHAT_MODEL, LOOKAHEAD_OFF, STORIES_GGUF, startEngine, type TestEngine } from '../helpers/engine.js';

/**
 * Structured outputs under lookahead: greedy output with a json_schema constraint is token for token the output with
 * lookahead off (the grammar masks drafts and targets alike), and every completed output parses and validates
 * against its schema. Schemas are bounded (maxLength, maxItems, enums, integer ranges), so a grammar-forced output
 * ends; an output cut by max_tokens (finish_reason "length") is not JSON and is counted, not validated.
 */
const SCHEMAS: Record<string, unknown>[] = [
  { type: 'object', properties: { title: { type: 'string', maxLength: 24 }, year: { type: 'integer', minimum: 1900, maximum: 2100 } }, required: ['title', 'year'] },
  { type: 'object', properties: { colour: { enum: ['red', 'green', 'blue'] }, ok: { type: 'boolean' } }, required: ['colour', 'ok'] },
  { type: 'object', properties: { people: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 3 } }, required: ['people'] },
  {
    type: 'object',
    properties: {
      author: { type: 'object', properties: { first: { type: 'string', maxLength: 10 }, last: { type: 'string', maxLength: 10 } }, required: ['first', 'last'] },
      tags: { type: 'array', items: { enum: ['news', 'sport', 'tech'] }, maxItems: 2 },
    },
    required: ['author', 'tags'],
  },
  { type: 'object', properties: { date: { type: 'string', format: 'date' }, place: { type: 'string', maxLength: 16 } }, required: ['date', 'place'] },
  { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{2}$' } }, required: ['code'] },
  {
    anyOf: [
      { type: 'object', properties: { kind: { const: 'count' }, n: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['kind', 'n'] },
      { type: 'object', properties: { kind: { const: 'word' }, w: { type: 'string', maxLength: 6 } }, required: ['kind', 'w'] },
    ],
  },
  {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: { type: 'object', properties: { id: { type: 'integer', minimum: 0, maximum: 99 }, label: { enum: ['a', 'b'] } }, required: ['id', 'label'] },
        minItems: 1,
        maxItems: 2,
      },
    },
    required: ['items'],
  },
  {
    type: 'object',
    properties: { from: { $ref: '#/$defs/point' }, to: { $ref: '#/$defs/point' } },
    required: ['from', 'to'],
    $defs: { point: { type: 'object', properties: { x: { type: 'integer', minimum: 0, maximum: 9 }, y: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['x', 'y'] } },
  },
  { enum: ['yes', 'no', 'maybe'] },
  {
    type: 'object',
    properties: {
      title: { type: 'string', maxLength: 40 },
      date: { type: 'string', format: 'date' },
      people: { type: 'array', items: { type: 'string', maxLength: 24 }, maxItems: 4 },
    },
    required: ['title', 'date', 'people'],
  },
  { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 9 }, b: { type: 'string', maxLength: 5 } }, required: ['a'] },
];

const PROMPTS = [
  'Extract the title and the people from this article: The mayor of Springfield, Ana Ruiz, opened a new bridge on 3 May 2021.',
  'Return JSON describing a football match between Leeds and York.',
  'Summarise as JSON: a storm hit the coast on Tuesday; two fishermen, Tom and Ben, were rescued.',
  'Answer in JSON only. What colour is the sky?',
  'Give a structured record of a short story about a cat named Mo.',
];

const LOOKAHEAD_ON: LookaheadOptions = { enabled: true, layout: 'hier', decodingLength: 16, branchLength: 8 };

interface Outcome {
  ids: number[];
  text: string;
  result: JobResult;
}

/** Runs every schema × prompt pair with lookahead off, then on (plus a grammar-violating client prediction). */
async function runPairs(t: TestEngine, encode: (prompt: string) => number[], maxTokens: number, prompts = PROMPTS) {
  const pairs: { schema: Record<string, unknown>; prompt: number[]; prediction?: number[] }[] = [];
  for (const schema of SCHEMAS) for (const prompt of prompts) pairs.push({ schema, prompt: encode(prompt) });
  // A prediction that is not JSON at all: drafted from, and every one of its tokens the grammar forbids is rejected.
  const notJson = encode('Plain prose, not an object.');
  pairs.push(...SCHEMAS.slice(0, 4).map((schema, i) => ({ schema, prompt: encode(prompts[i % prompts.length]), prediction: notJson })));
  const off: Outcome[] = [];
  const on: Outcome[] = [];
  for (const p of pairs) {
    const constraint: OutputConstraint = { type: 'json_schema', schema: p.schema };
    const extra = p.prediction ? { predictionIds: p.prediction } : {};
    off.push(await t.run(p.prompt, { maxTokens, lookahead: LOOKAHEAD_OFF, constraint, ...extra }));
    on.push(await t.run(p.prompt, { maxTokens, lookahead: LOOKAHEAD_ON, constraint, ...extra }));
  }
  return { pairs, off, on };
}

function checkOutcomes(run: Awaited<ReturnType<typeof runPairs>>) {
  const ajv = new Ajv2020({ strict: false });
  let completed = 0;
  let accepted = 0;
  let drafted = 0;
  run.pairs.forEach((p, i) => {
    expect(run.on[i].ids, `pair ${i}: lookahead on differs from off`).toEqual(run.off[i].ids);
    accepted += run.on[i].result.lookahead.acceptedTokens;
    drafted += run.on[i].result.lookahead.draftTokens;
    if (run.off[i].result.finishReason !== 'stop') return;
    completed++;
    const value = JSON.parse(run.off[i].text) as unknown;
    const validate = ajv.compile(p.schema);
    expect(validate(value), `pair ${i}: ${run.off[i].text} fails its schema: ${ajv.errorsText(validate.errors)}`).toBe(true);
  });
  return { completed, accepted, drafted };
}

describe('structured outputs are lossless under lookahead: synthetic model', () => {
  let t: TestEngine;
  let run: Awaited<ReturnType<typeof runPairs>>;

  beforeAll(async () => {
    t = await startEngine();
    const tok = t.engine.tokenizer(t.modelId);
    run = await runPairs(t, (text) => tok.encode(text, { addSpecialTokens: false }), 96);
  }, 600_000);
  afterAll(() => t?.close());

  it('runs at least 50 schema/prompt pairs; on equals off on every one; completed outputs validate', () => {
    expect(run.pairs.length).toBeGreaterThanOrEqual(50);
    const { completed, accepted, drafted } = checkOutcomes(run);
    // The grammar bounds every schema here, so nearly all outputs end before max_tokens even from a noise model.
    expect(completed).toBeGreaterThanOrEqual(Math.floor(run.pairs.length * 0.8));
    expect(accepted).toBeGreaterThan(0);
    expect(drafted).toBeGreaterThan(accepted);
  });

  it('the greedy fast path (unmasked pick checked by the matcher) gives what full masking gives', async () => {
    // Asking for logprobs turns the fast path off: every pick is made from the masked row.
    for (let i = 0; i < run.pairs.length; i += 6) {
      const p = run.pairs[i];
      const constraint: OutputConstraint = { type: 'json_schema', schema: p.schema };
      const masked = await t.run(p.prompt, { maxTokens: 96, lookahead: LOOKAHEAD_ON, constraint, logprobs: 0 });
      expect(masked.ids, `pair ${i}`).toEqual(run.off[i].ids);
      expect(masked.result.lookahead.masks).toBe(masked.ids.length);
      expect(run.off[i].result.lookahead.masks!).toBeLessThanOrEqual(run.off[i].ids.length);
    }
  });

  it('ends at the grammar: a completed output ends in EOS right after its JSON', () => {
    const eos = new Set(t.engine.tokenizer(t.modelId).eosTokenIds);
    for (const o of run.off.filter((x) => x.result.finishReason === 'stop')) expect(eos.has(o.ids[o.ids.length - 1])).toBe(true);
  });
});

const haveChat = existsSync(CHAT_MODEL);
if (!haveChat) console.warn(`SKIPPED structured-output lossless test on chat-llama-5m: ${CHAT_MODEL} is absent`);

describe.skipIf(!haveChat)('structured outputs are lossless under lookahead: chat-llama-5m', () => {
  let t: TestEngine;
  let run: Awaited<ReturnType<typeof runPairs>>;

  beforeAll(async () => {
    t = await startEngine(['--model', CHAT_MODEL]);
    const tok = t.engine.tokenizer(t.modelId);
    const encode = (text: string) => tok.encode(tok.renderChat([{ role: 'user', content: text }]), { addSpecialTokens: !tok.chatTemplateAddsBos });
    run = await runPairs(t, encode, 160);
  }, 600_000);
  afterAll(() => t?.close());

  it('on equals off on every pair; completed outputs parse and validate; drafts were accepted', () => {
    expect(run.pairs.length).toBeGreaterThanOrEqual(50);
    const { completed, accepted } = checkOutcomes(run);
    expect(completed).toBeGreaterThanOrEqual(Math.floor(run.pairs.length * 0.8));
    expect(accepted).toBeGreaterThan(0);
  });
});

const haveGguf = existsSync(STORIES_GGUF);
if (!haveGguf) console.warn(`SKIPPED structured-output test on stories260K (GGUF): ${STORIES_GGUF} is absent`);

describe.skipIf(!haveGguf)('structured outputs on a GGUF model (SentencePiece vocabulary with byte tokens)', () => {
  let t: TestEngine;
  let run: Awaited<ReturnType<typeof runPairs>>;

  beforeAll(async () => {
    t = await startEngine(['--model', STORIES_GGUF]);
    const tok = t.engine.tokenizer(t.modelId);
    // Its context is 128 tokens: a short prompt, and room for the longest answers of a 512-token vocabulary.
    run = await runPairs(t, (text) => tok.encode(text), 110, ['Once upon a time']);
  }, 600_000);
  afterAll(() => t?.close());

  it('on equals off; completed outputs parse and validate', () => {
    const { completed } = checkOutcomes(run);
    expect(completed).toBeGreaterThanOrEqual(Math.floor(run.pairs.length * 0.8));
  });
});
