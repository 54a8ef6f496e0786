import { describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/errors.js';
import { createGgufTokenizer } from '../../src/model/tokenizer/gguf-tokenizer.js';

const TOKENS = ['<unk>', '<s>', '</s>', '<0x0A>', '<0xC3>', '<0xA9>', '▁', 'a', 'b', 'c', 'ab', 'bc', '▁a', '▁ab', '<|im_start|>', '<|im_end|>', '<tool>'];
const TYPES = [2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 4];
const id = (piece: string): number => TOKENS.indexOf(piece);

function metadata(overrides: Record<string, unknown> = {}, scores: Record<string, number> = {}): Map<string, unknown> {
  const base: Record<string, number> = { ab: -5, bc: -1, '▁a': -3, '▁ab': -4, ...scores };
  return new Map<string, unknown>(Object.entries({
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': TOKENS,
    'tokenizer.ggml.scores': Float32Array.from(TOKENS, (t) => base[t] ?? -10),
    'tokenizer.ggml.token_type': Int32Array.from(TYPES),
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
    'tokenizer.ggml.unknown_token_id': 0,
    ...overrides,
  }));
}

describe('GGUF SentencePiece tokenizer', () => {
  it('gives token bytes for text and byte tokens, none for control or unknown ones', () => {
    const tok = createGgufTokenizer(metadata());
    expect([...tok.tokenBytes(id('▁ab'))!]).toEqual([0x20, 0x61, 0x62]);
    expect([...tok.tokenBytes(id('<0xC3>'))!]).toEqual([0xc3]);
    expect(tok.tokenBytes(id('<|im_start|>'))).toBeNull();
    expect(tok.tokenBytes(id('<unk>'))).toBeNull();
    expect([...tok.tokenBytes(id('<tool>'))!]).toEqual([...Buffer.from('<tool>')]);
  });

  it('merges the highest-scoring pair first, the leftmost on ties', () => {
    const noPrefix = { 'tokenizer.ggml.add_space_prefix': false };
    expect(createGgufTokenizer(metadata(noPrefix)).encode('abc', { addSpecialTokens: false })).toEqual([id('a'), id('bc')]);
    expect(createGgufTokenizer(metadata(noPrefix, { ab: -1 })).encode('abc', { addSpecialTokens: false })).toEqual([id('ab'), id('c')]);
  });

  it('adds the space prefix, maps spaces to ▁ and merges through it', () => {
    const tok = createGgufTokenizer(metadata());
    expect(tok.encode('ab')).toEqual([1, id('▁ab')]);
    expect(tok.encode('a ab', { addSpecialTokens: false })).toEqual([id('▁a'), id('▁ab')]);
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode('', { addSpecialTokens: false })).toEqual([]);
  });

  it('falls back to byte tokens, and to <unk> where a byte has no token', () => {
    const tok = createGgufTokenizer(metadata({ 'tokenizer.ggml.add_space_prefix': false }));
    expect(tok.encode('é\n', { addSpecialTokens: false })).toEqual([id('<0xC3>'), id('<0xA9>'), id('<0x0A>')]);
    expect(tok.encode('x', { addSpecialTokens: false })).toEqual([0]);
  });

  it('matches control and user-defined tokens verbatim, with a space prefix after each', () => {
    const tok = createGgufTokenizer(metadata());
    expect(tok.encode('<|im_start|>ab<|im_end|>', { addSpecialTokens: false })).toEqual([id('<|im_start|>'), id('▁ab'), id('<|im_end|>')]);
    expect(tok.encode('a<tool>', { addSpecialTokens: false })).toEqual([id('▁a'), id('<tool>')]);
  });

  it('honours add_bos_token false', () => {
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.add_bos_token': false })).encode('ab')).toEqual([id('▁ab')]);
  });

  it('decodes: ▁ to spaces, bytes assembled as UTF-8, the dummy-prefix space dropped at the start and after BOS', () => {
    const tok = createGgufTokenizer(metadata());
    expect(tok.decode([1, id('▁ab')])).toBe('<s>ab');
    expect(tok.decode([1, id('▁ab')], { skipSpecialTokens: true })).toBe('ab');
    expect(tok.decode([id('▁ab'), id('▁a')])).toBe('ab a');
    expect(tok.decode([id('a'), id('▁ab')])).toBe('a ab');
    expect(tok.decode([id('<0xC3>'), id('<0xA9>'), id('<0x0A>')])).toBe('é\n');
    expect(tok.decode([id('<|im_start|>'), id('a'), id('<|im_end|>')], { skipSpecialTokens: true })).toBe('a');
    expect(tok.decode([id('a'), 999, -1])).toBe('a');
    expect(tok.decode([])).toBe('');
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.add_space_prefix': false })).decode([id('▁ab')])).toBe(' ab');
  });

  it('renders an embedded chat template and sees that it writes BOS', () => {
    const template =
      "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    const tok = createGgufTokenizer(metadata({ 'tokenizer.chat_template': template }));
    expect(tok.chatTemplateAddsBos).toBe(true);
    expect(tok.renderChat([{ role: 'user', content: 'ab' }])).toBe('<s><|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n');
    expect(createGgufTokenizer(metadata()).chatTemplateAddsBos).toBe(false);
  });

  it('rejects other tokenizer models and missing vocabularies', () => {
    expect(() => createGgufTokenizer(metadata({ 'tokenizer.ggml.model': 'bert' }))).toThrow(/tokenizer model "bert" is not supported/);
    expect(() => createGgufTokenizer(metadata({ 'tokenizer.ggml.tokens': undefined }))).toThrow(ModelLoadError);
    expect(() => createGgufTokenizer(metadata({ 'tokenizer.ggml.scores': new Float32Array(3) }))).toThrow(/tokenizer\.ggml\.scores/);
  });
});
