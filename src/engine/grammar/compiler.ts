import { LRUCache } from 'lru-cache';
import type { OutputConstraint } from '../types.js';
import { GrammarFilter } from './filter.js';
import { loadXGrammar, type CompiledGrammarHandle, type GrammarCompilerHandle, type XGrammar } from './xgrammar.js';

/** What json_object means here: any JSON object (not an array or scalar), additional properties allowed. */
const ANY_OBJECT = JSON.stringify({ type: 'object' });

/** Compiled grammars kept for reuse: clients send the same few schemas again and again. */
const CACHED_GRAMMARS = 64;

/**
 * The worker's grammar engine: the model's vocabulary as xgrammar's TokenizerInfo (token bytes from the tokenizer
 * layer, sent once by the main thread), a compiler, and compiled grammars by schema. Output is laid out compactly —
 * one line, `", "` and `": "` separators — so a constrained answer always terminates when its schema is bounded
 * (free whitespace would let a weak model pad forever) and its punctuation is predictable, which drafts exploit.
 */
export class GrammarCompilers {
  private vocab: (Uint8Array | string)[] | null = null;
  private compiler: Promise<{ xgrammar: XGrammar; compiler: GrammarCompilerHandle }> | null = null;
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

  /** A fresh matcher for one job, at the start of the output. */
  async filter(constraint: OutputConstraint): Promise<GrammarFilter> {
    const { xgrammar, compiler } = await this.ready();
    const schema = constraint.type === 'json_schema' ? JSON.stringify(constraint.schema) : ANY_OBJECT;
    const strict = constraint.type === 'json_schema';
    const key = `${strict ? 's' : 'o'}:${schema}`;
    let grammar = this.compiled.get(key);
    if (!grammar) {
      grammar = compiler.compileJSONSchema(schema, false, -1, undefined, strict);
      this.compiled.set(key, grammar);
      grammar.catch(() => this.compiled.delete(key));
    }
    const matcher = await xgrammar.GrammarMatcher.createGrammarMatcher(await grammar, [...this.stopTokenIds], false, -1);
    return new GrammarFilter(xgrammar, matcher, this.vocabSize);
  }

  private ready(): Promise<{ xgrammar: XGrammar; compiler: GrammarCompilerHandle }> {
    this.compiler ??= (async () => {
      if (!this.vocab) throw new Error('structured output: the grammar vocabulary was not sent to the worker');
      const xgrammar = await loadXGrammar();
      const info = await xgrammar.TokenizerInfo.createTokenizerInfo(this.vocab, 'raw', false, this.vocabSize, [...this.stopTokenIds]);
      this.vocab = null;
      return { xgrammar, compiler: await xgrammar.GrammarCompiler.createGrammarCompiler(info, true) };
    })();
    return this.compiler;
  }
}
