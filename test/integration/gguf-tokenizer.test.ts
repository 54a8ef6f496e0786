import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openGguf } from '../../src/model/builder/sources/gguf/index.js';
import { createGgufTokenizer } from '../../src/model/tokenizer/gguf-tokenizer.js';
import { SHARED_DATA } from '../helpers/paths.js';
import { join } from 'node:path';

const DIR = join(SHARED_DATA, 'models/stories260K');
const GGUF = `${DIR}/stories260Ktok512.gguf`;
const REFERENCE = `${DIR}/greedy_reference.json`;
const present = existsSync(GGUF) && existsSync(REFERENCE);
if (!present) console.warn(`skipping GGUF tokenizer tests: ${GGUF} or ${REFERENCE} is absent`);

interface Case {
  prompt: string;
  prompt_ids: number[];
  output_ids: number[];
  text: string;
}

describe.skipIf(!present)('GGUF tokenizer on stories260K', () => {
  const tok = createGgufTokenizer(openGguf(GGUF).metadata);
  const cases = (JSON.parse(readFileSync(REFERENCE, 'utf8')) as { cases: Case[] }).cases;

  it('knows its vocabulary and special ids', () => {
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.chatTemplateAddsBos).toBe(false);
  });

  it('encodes every reference prompt to its ids (BOS prepended, dummy-prefix space)', () => {
    for (const c of cases) expect(tok.encode(c.prompt), c.prompt).toEqual(c.prompt_ids);
    expect(tok.encode('Once upon a time', { addSpecialTokens: false })).toEqual(cases[1].prompt_ids.slice(1));
  });

  it('decodes the reference outputs to the reference text', () => {
    for (const c of cases) {
      expect(tok.decode(c.output_ids, { skipSpecialTokens: true })).toBe(c.text);
      expect(tok.decode(c.output_ids)).toBe(`<s>${c.text}`);
    }
  });

  it('round-trips text, using byte fallback for characters outside the 512-token vocabulary', () => {
    for (const text of ['The cat sat on the mat.', '  two leading spaces', 'a\nnew line\tand tab', 'Héllo wörld, 日本語 🙂']) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      expect(tok.decode(ids), text).toBe(text);
    }
    // "日" is not a piece: it must come out as its three UTF-8 byte tokens (<0xE6> <0x97> <0xA5> = ids 233 154 168).
    expect(tok.encode('日', { addSpecialTokens: false }).slice(-3)).toEqual([0xe6 + 3, 0x97 + 3, 0xa5 + 3]);
  });

  it('renders chats without a template with the plain fallback', () => {
    const prompt = tok.renderChat([{ role: 'user', content: 'Once upon a time' }]);
    expect(prompt).toContain('Once upon a time');
    expect(tok.encode(prompt)[0]).toBe(1);
  });
});
