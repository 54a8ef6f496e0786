/**
 * The word splitting that runs before BPE merges, named by a GGUF's `tokenizer.ggml.pre`, as llama.cpp's
 * llama-vocab.cpp defines it. A style is a list of regexes applied in turn: each one splits every piece the
 * previous one left into its matches and the text between them (both kept), so nothing is ever dropped.
 *
 * The patterns are llama.cpp's (its case-insensitive contractions already spelled out as `'[sS]`), with `\s` and
 * `\S` replaced by llama.cpp's whitespace set: JavaScript's `\s` also matches U+FEFF and misses U+0085.
 */
import { ModelLoadError } from '../../errors.js';

export interface PreTokenizerStyle {
  /** The regexes, applied in order. */
  readonly patterns: readonly RegExp[];
  /** A word that is itself a token skips merging (Llama 3's `ignore_merges`). */
  readonly ignoreMerges: boolean;
  /** llama.cpp's add_bos default for this style; `tokenizer.ggml.add_bos_token` overrides it. */
  readonly addBos: boolean;
}

const WS = '\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/** Inside a character class `\s` becomes the bare ranges; elsewhere a class of its own. */
function pattern(source: string): RegExp {
  const inClasses = source.replace(/\[[^\]]*\]/g, (cls) => cls.replaceAll('\\s', WS));
  return new RegExp(inClasses.replaceAll('\\s', `[${WS}]`).replaceAll('\\S', `[^${WS}]`), 'gu');
}

const LLAMA3 = pattern(`${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`);
const QWEN2 = pattern(`${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`);
const GPT2 = pattern(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)`);
const DIGIT = pattern('\\p{N}');
// Upper-then-lower letter runs as llama.cpp writes them for its regex engine: a "non-lowercase" letter is any
// letter outside a-z, so non-ASCII letters count as both cases (as they do in llama.cpp).
const GPT4O = pattern(
  `[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+${CONTRACTIONS}?|[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*${CONTRACTIONS}?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
);
// Qwen3.5: combining marks belong to the letter run.
const QWEN35 = pattern(`${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`);
// Mistral's tekken: GPT-4o's letter runs without contractions, single digits.
const TEKKEN = pattern(
  `[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+|[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
);
const DEFAULT = [
  pattern('[\\p{P}\\$\\+<=>\\^~\\|]+'),
  GPT2,
  pattern('\\p{N}+'),
  pattern('[0-9][0-9][0-9]'),
];

function style(patterns: RegExp[], ignoreMerges = false, addBos = false): PreTokenizerStyle {
  return { patterns, ignoreMerges, addBos };
}

const STYLES = new Map<string, PreTokenizerStyle>();
const define = (names: string[], s: PreTokenizerStyle): void => names.forEach((n) => STYLES.set(n, s));
define(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'], style([LLAMA3], true, true));
define(['dbrx', 'smaug-bpe'], style([LLAMA3]));
define(['qwen2', 'deepseek-r1-qwen', 'stablelm2'], style([QWEN2]));
define(['qwen35'], style([QWEN35]));
define(['tekken'], style([TEKKEN], true, true));
define(['gpt-2', 'phi-2', 'mpt', 'olmo', 'jais'], style([GPT2]));
define(['smollm', 'starcoder', 'refact', 'command-r', 'codeshell', 'exaone'], style([DIGIT, GPT2]));
define(['gpt-4o', 'llama4'], style([GPT4O]));
define(['default'], style(DEFAULT));

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = [...STYLES.keys()];

/** The style for a `tokenizer.ggml.pre` value; a missing one is llama.cpp's "default" (as it does, with a warning). */
export function preTokenizerStyle(name: string | null): PreTokenizerStyle {
  const found = STYLES.get(name ?? 'default');
  if (found === undefined) {
    throw new ModelLoadError(
      `GGUF pre-tokenizer "${name}" (tokenizer.ggml.pre) is not supported; supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')}`,
    );
  }
  return found;
}

/** Splits text into words: each pattern in turn splits every piece into its matches and the gaps between them. */
export function preTokenize(text: string, patterns: readonly RegExp[]): string[] {
  let pieces = [text];
  for (const re of patterns) {
    const next: string[] = [];
    for (const piece of pieces) {
      let start = 0;
      re.lastIndex = 0;
      for (let m = re.exec(piece); m !== null; m = re.exec(piece)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        if (m.index > start) next.push(piece.slice(start, m.index));
        next.push(m[0]);
        start = m.index + m[0].length;
      }
      if (start < piece.length) next.push(piece.slice(start));
    }
    pieces = next;
  }
  return pieces;
}
