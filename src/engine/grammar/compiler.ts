import { LRUCache } from 'lru-cache';
import type { OutputConstraint } from '../types.js';
import { GrammarFilter } from './filter.js';
import { Utf8Guard } from './utf8.js';
import { loadXGrammar, type CompiledGrammarHandle, type GrammarCompilerHandle, type XGrammar } from './xgrammar.js';

/** What json_object means here: any JSON object (not an array or scalar), additional properties allowed. */
const ANY_OBJECT = JSON.stringify({ type: 'object' });

/**
 * Compiled grammars kept for reuse: clients send the same few schemas again and again. Kept per tenant: a grammar
 * compiled for another tenant would start this one's answer sooner, and so tell it which schemas others just sent.
 */
const CACHED_GRAMMARS = 64;

/**
 * The worker's grammar engine: the model's vocabulary as xgrammar's TokenizerInfo (token bytes from the tokenizer
 * layer, sent once by the main thread), a compiler, and compiled grammars by schema. Output is laid out compactly —
 * one line, `", "` and `": "` separators — so a constrained answer always terminates when its schema is bounded
 * (free whitespace would let a weak model pad forever) and its punctuation is predictable, which drafts exploit.
 */
export class GrammarCompilers {
  private vocab: (Uint8Array | string)[] | null = null;
  private compiler: Promise<{ xgrammar: XGrammar; compiler: GrammarCompilerHandle; utf8: Utf8Guard }> | null = null;
  private readonly compiled = new LRUCache<string, Promise<CompiledGrammarHandle>>({
    max: CACHED_GRAMMARS,
    dispose: (grammar) => void grammar.then((g) => g.dispose(), () => {}),
  });

  constructor(
    private readonly vocabSize: number,
    private readonly stopTokenIds: readonly number[],
  ) {}

  /** Token bytes by id (null = special, never allowed as text); must arrive before the first constrained job. */
  setVocab(tokens: (Uint8Array | null)[]): void {
    const vocab: (Uint8Array | string)[] = new Array(this.vocabSize);
    // xgrammar never allows an empty token, which is what special and padding ids must be.
    for (let id = 0; id < this.vocabSize; id++) vocab[id] = tokens[id] ?? '';
    this.vocab = vocab;
  }

  /** A fresh matcher for one of `tenant`'s jobs, at the start of the output. */
  async filter(constraint: OutputConstraint, tenant: string): Promise<GrammarFilter> {
    const { xgrammar, compiler, utf8 } = await this.ready();
    const schema = constraint.type === 'json_schema' ? JSON.stringify(boundedStrings(constraint.schema)) : ANY_OBJECT;
    const strict = constraint.type === 'json_schema';
    const key = `${tenant}\0${strict ? 's' : 'o'}:${schema}`;
    let grammar = this.compiled.get(key);
    if (!grammar) {
      grammar = compiler.compileJSONSchema(schema, false, -1, undefined, strict);
      this.compiled.set(key, grammar);
      grammar.catch(() => this.compiled.delete(key));
    }
    const matcher = await xgrammar.GrammarMatcher.createGrammarMatcher(await grammar, [...this.stopTokenIds], false, -1);
    return new GrammarFilter(xgrammar, matcher, this.vocabSize, utf8);
  }

  private ready(): Promise<{ xgrammar: XGrammar; compiler: GrammarCompilerHandle; utf8: Utf8Guard }> {
    this.compiler ??= (async () => {
      if (!this.vocab) throw new Error('structured output: the grammar vocabulary was not sent to the worker');
      const xgrammar = await loadXGrammar();
      const info = await xgrammar.TokenizerInfo.createTokenizerInfo(this.vocab, 'raw', false, this.vocabSize, [...this.stopTokenIds]);
      const utf8 = new Utf8Guard(this.vocab);
      this.vocab = null;
      // xgrammar's own cache is keyed by schema alone, across tenants: `compiled` is the cache.
      return { xgrammar, compiler: await xgrammar.GrammarCompiler.createGrammarCompiler(info, false), utf8 };
    })();
    return this.compiler;
  }
}

/** Values that are data, not subschemas: never rewritten. */
const DATA_KEYWORDS = new Set(['enum', 'const', 'default', 'examples']);

/**
 * xgrammar writes a string with minLength/maxLength as any characters but quote, backslash, CR and LF — so tabs and
 * other control characters, which JSON forbids unescaped, get through. Such strings are compiled as the equivalent
 * pattern without them (no escapes either, as xgrammar's own rule has none), which keeps the length bound.
 */
function boundedStrings(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(boundedStrings);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = DATA_KEYWORDS.has(key) ? value : boundedStrings(value);
  const { minLength, maxLength } = out;
  if (out.type === 'string' && (minLength !== undefined || maxLength !== undefined) && !('pattern' in out) && !('format' in out)) {
    out.pattern = `^[^"\\\\\\x00-\\x1f]{${typeof minLength === 'number' ? minLength : 0},${typeof maxLength === 'number' ? maxLength : ''}}$`;
    delete out.minLength;
    delete out.maxLength;
  }
  return out;
}
