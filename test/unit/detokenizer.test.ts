import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from '../../src/model/tokenizer/detokenizer.js';
import { openGguf } from '../../src/model/builder/sources/gguf/index.js';
import { createGgufTokenizer } from '../../src/model/tokenizer/gguf-tokenizer.js';
import { loadHfTokenizer } from '../../src/model/tokenizer/hf-tokenizer.js';
import type { TextTokenizer } from '../../src/model/tokenizer/types.js';
import {
  byteFallbackTokenizerJson,
  byteLevelTokenizerJson,
  defaultConfig,
  writeTokenizerDir,
} from './tokenizer-fixtures.js';
import { SHARED_DATA } from '../helpers/paths.js';

const TEXT = 'hello wé 😀 日本 x ñ 🎉🎉 à la';

function load(json: object): TextTokenizer {
  return loadHfTokenizer(writeTokenizerDir({ tokenizer: json, config: defaultConfig() }));
}

/** Counts decode calls and the ids they were given, to check the window stays small. */
function spy(tok: TextTokenizer): { tok: TextTokenizer; longest: () => number } {
  let longest = 0;
  const wrapped: TextTokenizer = Object.create(tok);
  wrapped.decode = (ids, options) => {
    longest = Math.max(longest, ids.length);
    return tok.decode(ids, options);
  };
  return { tok: wrapped, longest: () => longest };
}

function isWholeText(s: string): boolean {
  return !s.includes('\uFFFD') && !/[\uD800-\uDBFF]$/.test(s);
}

for (const [name, json] of [
  ['byte-level BPE', byteLevelTokenizerJson()],
  ['SentencePiece byte fallback', byteFallbackTokenizerJson()],
] as const) {
  describe(`IncrementalDetokenizer over ${name}`, () => {
    const tok = load(json);
    const ids = tok.encode(TEXT, { addSpecialTokens: false });

    it('splits multi-byte characters over several tokens (the fixture does what the tests rely on)', () => {
      const partial = ids.some((_, i) => tok.decode(ids.slice(0, i + 1)).endsWith('\uFFFD'));
      expect(partial).toBe(true);
    });

    it('one token at a time: no delta holds half a character, joined deltas equal the full decode', () => {
      const { tok: counted, longest } = spy(tok);
      const detok = new IncrementalDetokenizer(counted);
      const deltas = ids.map((id) => detok.push(id));
      deltas.push(detok.flush());
      for (const d of deltas) expect(isWholeText(d)).toBe(true);
      expect(deltas.join('')).toBe(tok.decode(ids));
      expect(deltas.join('')).toBe(TEXT);
      // Waiting on an emoji spans at most 4 pending tokens plus the prefix.
      expect(longest()).toBeLessThanOrEqual(8);
    });

    it('several tokens per push, in every chunking, gives the same text', () => {
      for (const size of [2, 3, 5, 7]) {
        const detok = new IncrementalDetokenizer(tok);
        let out = '';
        for (let i = 0; i < ids.length; i += size) {
          const d = detok.push(Int32Array.from(ids.slice(i, i + size)));
          expect(isWholeText(d)).toBe(true);
          out += d;
        }
        expect(out + detok.flush()).toBe(TEXT);
      }
    });

    it('skips special tokens by default and keeps them on request', () => {
      const withEos = [...ids, 2];
      const skip = new IncrementalDetokenizer(tok);
      expect(withEos.map((id) => skip.push(id)).join('') + skip.flush()).toBe(TEXT);
      const keep = new IncrementalDetokenizer(tok, { skipSpecialTokens: false });
      expect(withEos.map((id) => keep.push(id)).join('') + keep.flush()).toBe(TEXT + '</s>');
    });

    it('with prompt context, the continuation keeps the text it has after the prompt', () => {
      const prompt = tok.encode('hello', { addSpecialTokens: false });
      const rest = tok.encode('hello wé 😀', { addSpecialTokens: false }).slice(prompt.length);
      const detok = new IncrementalDetokenizer(tok, { contextIds: prompt });
      const out = rest.map((id) => detok.push(id)).join('') + detok.flush();
      expect(out).toBe(' wé 😀');
    });

    it('flush releases an incomplete character instead of losing it', () => {
      const emoji = tok.encode('😀', { addSpecialTokens: false });
      const partial = emoji.slice(0, emoji.findIndex((_, i) => tok.decode(emoji.slice(0, i + 1)).endsWith('\uFFFD')) + 1);
      expect(partial.length).toBeGreaterThan(0);
      const detok = new IncrementalDetokenizer(tok);
      expect(detok.push(partial)).toBe('');
      expect(detok.flush()).toBe(tok.decode(partial));
      expect(detok.flush()).toBe('');
    });

    it('a batch ending inside a character emits everything before it at once', () => {
      const head = tok.encode('hello wé ', { addSpecialTokens: false });
      const all = tok.encode('hello wé 😀', { addSpecialTokens: false });
      expect(all.slice(0, head.length)).toEqual(head);
      const detok = new IncrementalDetokenizer(tok);
      expect(detok.push(all.slice(0, all.length - 1))).toBe('hello wé ');
      expect(detok.push(all[all.length - 1])).toBe('😀');
    });

    it('invalid bytes do not stall the stream beyond a character worth of tokens', () => {
      const junk = tok.encode('日', { addSpecialTokens: false }).slice(-2); // two continuation bytes, no lead byte
      expect(tok.decode(junk)).toContain('\uFFFD');
      const detok = new IncrementalDetokenizer(tok);
      let out = detok.push(junk);
      for (const id of tok.encode('hello hello', { addSpecialTokens: false })) out += detok.push(id);
      expect(out + detok.flush()).toBe(tok.decode([...junk, ...tok.encode('hello hello', { addSpecialTokens: false })]));
      expect(out).toContain('hello');
    });
  });
}

const CHAT_LLAMA = join(SHARED_DATA, 'models/chat-llama-5m');
const haveChatLlama = existsSync(join(CHAT_LLAMA, 'greedy_reference.json'));
if (!haveChatLlama) console.warn(`skipping chat-llama-5m detokenizer test: ${CHAT_LLAMA} not found`);

describe.skipIf(!haveChatLlama)('IncrementalDetokenizer on chat-llama-5m outputs (shared data)', () => {
  it('streams each reference output to the reference text', () => {
    const tok = loadHfTokenizer(CHAT_LLAMA);
    const ref = JSON.parse(readFileSync(join(CHAT_LLAMA, 'greedy_reference.json'), 'utf8'));
    for (const c of ref.cases as { prompt_ids: number[]; output_ids: number[]; text: string }[]) {
      const detok = new IncrementalDetokenizer(tok, { contextIds: c.prompt_ids });
      const out = c.output_ids.map((id) => detok.push(id)).join('') + detok.flush();
      expect(out).toBe(tok.decode(c.output_ids, { skipSpecialTokens: true }));
      expect(out).toBe(c.text.replace('<|im_end|>', ''));
    }
  });
});

/** mulberry32: the same ids and cuts on every run, so a failure reproduces. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Streams `ids` in batches cut at random places; returns the joined deltas. */
function streamed(tok: TextTokenizer, ids: number[], random: () => number, contextIds?: number[]): string {
  const detok = new IncrementalDetokenizer(tok, { contextIds });
  let out = '';
  for (let i = 0; i < ids.length; ) {
    const size = 1 + Math.floor(random() * 9);
    out += detok.push(ids.slice(i, i + size));
    i += size;
  }
  return out + detok.flush();
}

const STORIES_GGUF = join(SHARED_DATA, 'models/stories260K/stories260Ktok512.gguf');
const realTokenizers: [string, string, () => TextTokenizer][] = [
  ['chat-llama-5m (byte-level BPE)', join(CHAT_LLAMA, 'tokenizer.json'), () => loadHfTokenizer(CHAT_LLAMA)],
  ['stories260K (SentencePiece byte fallback)', STORIES_GGUF, () => createGgufTokenizer(openGguf(STORIES_GGUF).metadata)],
];
for (const [name, file, open] of realTokenizers) {
  if (!existsSync(file)) console.warn(`skipping the ${name} detokenizer property test: ${file} not found`);
  describe.skipIf(!existsSync(file))(`IncrementalDetokenizer on random ids of ${name} (shared data)`, () => {
    it('renders the same text whatever the batch cuts: streamed equals a whole decode', () => {
      const tok = open();
      const random = seeded(24);
      const context = tok.encode('Once upon a time', { addSpecialTokens: false });
      for (let round = 0; round < 300; round++) {
        const ids = Array.from({ length: 1 + Math.floor(random() * 40) }, () => Math.floor(random() * tok.vocabSize));
        expect(streamed(tok, ids, random), `ids ${ids}`).toBe(tok.decode(ids, { skipSpecialTokens: true }));
        const whole = new IncrementalDetokenizer(tok, { contextIds: context });
        const reference = whole.push(ids) + whole.flush();
        expect(streamed(tok, ids, random, context), `ids ${ids} after a prompt`).toBe(reference);
      }
    });
  });
}
