/**
 * Hand-made tokenizer directories for tests that must not depend on shared data: a GPT-2 style byte-level BPE and
 * a Llama style SentencePiece BPE with byte fallback. In both, multi-byte characters span several tokens.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}" +
  '{% if add_generation_prompt %}<|assistant|>{% endif %}';

/** GPT-2's printable stand-ins for the 256 byte values. */
function byteToUnicode(): string[] {
  const direct: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) direct.push(b);
  for (let b = 0xa1; b <= 0xac; b++) direct.push(b);
  for (let b = 0xae; b <= 0xff; b++) direct.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = direct.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return table;
}

function special(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function bosTemplate(bosId: number) {
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<s>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<s>': { id: '<s>', ids: [bosId], tokens: ['<s>'] } },
  };
}

/** Byte-level BPE: ids 0..2 specials (<|endoftext|>, <s>, </s>), 3..258 the bytes, then a few merges. */
export function byteLevelTokenizerJson(): object {
  const bytes = byteToUnicode();
  const vocab: Record<string, number> = { '<|endoftext|>': 0, '<s>': 1, '</s>': 2 };
  bytes.forEach((ch, b) => (vocab[ch] = 3 + b));
  const e = (b: number) => bytes[b];
  // "é" becomes one token; "😀" (F0 9F 98 80) three, the first holding two bytes; "日" (E6 97 A5) three.
  const merges = ['h e', 'l l', 'he ll', `${e(0xc3)} ${e(0xa9)}`, `${e(0xf0)} ${e(0x9f)}`, `${e(0x20)} w`];
  let next = 259;
  for (const m of merges) vocab[m.replace(' ', '')] = next++;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<|endoftext|>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: bosTemplate(1),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** SentencePiece-style BPE with byte fallback: <unk>, <s>, </s>, <0x00>..<0xFF>, then a small lowercase vocabulary. */
export function byteFallbackTokenizerJson(): object {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  let next = 259;
  for (const piece of ['▁', ...'abcdefghijklmnopqrstuvwxyz', '▁h', '▁he', 'll', 'llo', '▁hello', '▁w']) vocab[piece] = next++;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { ...special(0, '<unk>') },
      { ...special(1, '<s>') },
      { ...special(2, '</s>') },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: bosTemplate(1),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: ['▁ h', '▁h e', 'l l', 'll o', '▁he llo', '▁ w'],
    },
  };
}

export interface FixtureFiles {
  tokenizer?: object | string;
  config?: object | string;
  generation?: object | string;
  model?: object | string;
}

/** Writes the given files into a fresh temp directory (strings verbatim, objects as JSON); returns its path. */
export function writeTokenizerDir(files: FixtureFiles): string {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  mkdirSync(dir, { recursive: true });
  const write = (name: string, value: object | string | undefined) => {
    if (value !== undefined) writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  };
  write('tokenizer.json', files.tokenizer);
  write('tokenizer_config.json', files.config);
  write('generation_config.json', files.generation);
  write('config.json', files.model);
  return dir;
}

export function defaultConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    bos_token: '<s>',
    eos_token: '</s>',
    clean_up_tokenization_spaces: false,
    chat_template: CHAT_TEMPLATE,
    ...overrides,
  };
}
