import { describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/errors.js';
import { preTokenize, preTokenizerStyle } from '../../src/model/tokenizer/bpe-pretokenizers.js';
import { createGgufTokenizer } from '../../src/model/tokenizer/gguf-tokenizer.js';

// A byte-level vocabulary over printable ASCII, GPT-2's stand-ins for space (Ġ) and newline (Ċ), a few merges and
// special tokens. Type 1 normal, 3 control, 4 user-defined.
const ASCII = Array.from({ length: 0x7e - 0x20 }, (_, i) => String.fromCharCode(0x21 + i));
const MERGED = ['Ġa', 'ab', 'bc', 'Ġab', '12', 'hello'];
const SPECIAL = ['<|begin_of_text|>', '<|im_start|>', '<|im_end|>', '<think>'];
const TOKENS = [...ASCII, 'Ġ', 'Ċ', ...MERGED, ...SPECIAL];
const TYPES = TOKENS.map((t) => (t === '<think>' ? 4 : SPECIAL.includes(t) ? 3 : 1));
const id = (piece: string): number => TOKENS.indexOf(piece);
const ids = (...pieces: string[]): number[] => pieces.map(id);

function metadata(overrides: Record<string, unknown> = {}): Map<string, unknown> {
  return new Map<string, unknown>(Object.entries({
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': 'qwen2',
    'tokenizer.ggml.tokens': TOKENS,
    'tokenizer.ggml.token_type': Int32Array.from(TYPES),
    // 'h e' etc. never reach "hello": only ignore_merges (llama-bpe) can produce it.
    'tokenizer.ggml.merges': ['b c', 'a b', 'Ġ a', 'Ġa b', '1 2'],
    'tokenizer.ggml.bos_token_id': id('<|begin_of_text|>'),
    'tokenizer.ggml.eos_token_id': id('<|im_end|>'),
    ...overrides,
  }).filter(([, v]) => v !== undefined));
}

describe('GGUF byte-level BPE tokenizer', () => {
  it('merges the lowest-ranked pair first, the leftmost on ties', () => {
    const tok = createGgufTokenizer(metadata());
    expect(tok.encode('abc')).toEqual(ids('a', 'bc'));
    const abFirst = createGgufTokenizer(metadata({ 'tokenizer.ggml.merges': ['a b', 'b c'] }));
    expect(abFirst.encode('abc')).toEqual(ids('ab', 'c'));
    expect(abFirst.encode('abab')).toEqual(ids('ab', 'ab'));
  });

  it('spells bytes with the GPT-2 table and merges through the space stand-in', () => {
    const tok = createGgufTokenizer(metadata());
    expect(tok.encode('a a\n')).toEqual(ids('a', 'Ġa', 'Ċ'));
    // 'a b' outranks 'Ġ a', so " ab" never becomes 'Ġab'.
    expect(tok.encode('a ab\n')).toEqual(ids('a', 'Ġ', 'ab', 'Ċ'));
    expect(tok.decode(tok.encode('a ab\n'))).toBe('a ab\n');
  });

  it('splits words with the pre-tokenizer the file names', () => {
    expect(preTokenize('abc 12345', preTokenizerStyle('llama-bpe').patterns)).toEqual(['abc', ' ', '123', '45']);
    expect(preTokenize('abc 12345', preTokenizerStyle('qwen2').patterns)).toEqual(['abc', ' ', '1', '2', '3', '4', '5']);
    expect(preTokenize('abc 12345', preTokenizerStyle('gpt-2').patterns)).toEqual(['abc', ' 12345']);
    expect(preTokenize('abc 12345', preTokenizerStyle('smollm').patterns)).toEqual(['abc', ' ', '1', '2', '3', '4', '5']);
    expect(preTokenize("we'RE  x\n\n", preTokenizerStyle('llama-bpe').patterns)).toEqual(['we', "'RE", ' ', ' x', '\n\n']);
    // U+0085 is whitespace to llama.cpp (not to JavaScript's \s), U+FEFF is not.
    expect(preTokenize('a\u0085b\ufeffc', preTokenizerStyle('gpt-2').patterns)).toEqual(['a', '\u0085', 'b', '\ufeff', 'c']);
    expect(createGgufTokenizer(metadata()).encode('112')).toEqual(ids('1', '1', '2'));
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.pre': 'gpt-2' })).encode('112')).toEqual(ids('1', '12'));
  });

  it('takes a word that is a token whole under llama-bpe (ignore_merges), merges it elsewhere', () => {
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.pre': 'llama-bpe' })).encode('hello', { addSpecialTokens: false })).toEqual(ids('hello'));
    expect(createGgufTokenizer(metadata()).encode('hello')).toEqual(ids('h', 'e', 'l', 'l', 'o'));
  });

  it('adds BOS by the style default (llama-bpe yes, qwen2 no) unless the file says otherwise', () => {
    const bos = id('<|begin_of_text|>');
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.pre': 'llama-bpe' })).encode('a')).toEqual([bos, id('a')]);
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.pre': 'llama-bpe', 'tokenizer.ggml.add_bos_token': false })).encode('a')).toEqual(ids('a'));
    expect(createGgufTokenizer(metadata()).encode('a')).toEqual(ids('a'));
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.add_bos_token': true })).encode('a')).toEqual([bos, id('a')]);
  });

  it('matches control and user-defined tokens in text; end-of-turn tokens end generation', () => {
    const tok = createGgufTokenizer(metadata());
    expect(tok.encode('<|im_start|>ab<think>c<|im_end|>')).toEqual(ids('<|im_start|>', 'ab', '<think>', 'c', '<|im_end|>'));
    expect(tok.eosTokenIds).toEqual([id('<|im_end|>')]);
    expect(tok.decode(ids('<|im_start|>', 'ab', '<think>', '<|im_end|>'))).toBe('<|im_start|>ab<think><|im_end|>');
    expect(tok.decode(ids('<|im_start|>', 'ab', '<think>', '<|im_end|>'), { skipSpecialTokens: true })).toBe('ab<think>');
    // No eos id in the file: <|im_end|> is still one (llama.cpp's list of end-of-generation texts).
    expect(createGgufTokenizer(metadata({ 'tokenizer.ggml.eos_token_id': undefined })).eosTokenIds).toEqual([id('<|im_end|>')]);
  });

  it('decodes multi-byte characters split over byte tokens', () => {
    const tok = createGgufTokenizer(metadata({ 'tokenizer.ggml.tokens': [...TOKENS, 'Ã', '©'], 'tokenizer.ggml.token_type': Int32Array.from([...TYPES, 1, 1]) }));
    expect(tok.encode('é')).toEqual([TOKENS.length, TOKENS.length + 1]);
    expect(tok.decode([TOKENS.length, TOKENS.length + 1])).toBe('é');
  });

  it('renders the embedded chat template with extra template variables', () => {
    const template =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}";
    const tok = createGgufTokenizer(metadata({ 'tokenizer.chat_template': template }));
    const messages = [{ role: 'user', content: 'ab' }];
    expect(tok.renderChat(messages)).toBe('<|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.renderChat(messages, { templateKwargs: { enable_thinking: false } })).toBe(
      '<|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
    expect(tok.renderChat(messages, { templateKwargs: { messages: [] } })).toContain('ab');
  });

  it('refuses an unknown pre-tokenizer by name, and a vocabulary without merges', () => {
    expect(() => createGgufTokenizer(metadata({ 'tokenizer.ggml.pre': 'klingon-bpe' }))).toThrow(/pre-tokenizer "klingon-bpe" \(tokenizer\.ggml\.pre\) is not supported/);
    expect(() => createGgufTokenizer(metadata({ 'tokenizer.ggml.merges': undefined }))).toThrow(ModelLoadError);
    expect(() => createGgufTokenizer(metadata({ 'tokenizer.ggml.merges': [1, 2] }))).toThrow(/tokenizer\.ggml\.merges must be a list of strings/);
    expect(() => createGgufTokenizer(metadata({ 'tokenizer.ggml.model': 't5' }))).toThrow(/tokenizer model "t5" is not supported/);
  });
});
