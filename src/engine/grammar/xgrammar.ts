import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';

/**
 * xgrammar's WASM build (@mlc-ai/web-xgrammar), the grammar engine vLLM and SGLang use. Its bundle is UMD but its
 * package.json says "type": "module", so Node's loader cannot run it; it is compiled here as the CommonJS module it
 * is. Hooks are added on the way: the public getNextTokenBitmask is async and returns a fresh copy per call, so the
 * module also exports a synchronous view of the mask vector, which the decode loop copies into its own buffer; schema
 * conversion is exported synchronously for request validation; and the engine's error lines (printed, then
 * `abort()`ed on) are collected in `errorLines` instead of going to stderr.
 */
export interface XGrammar {
  GrammarCompiler: { createGrammarCompiler(info: TokenizerInfoHandle, cacheEnabled?: boolean): Promise<GrammarCompilerHandle> };
  TokenizerInfo: {
    createTokenizerInfo(vocab: (string | Uint8Array)[], vocabType: string, prependSpace: boolean, vocabSize: number, stopTokenIds: number[]): Promise<TokenizerInfoHandle>;
  };
  GrammarMatcher: { createGrammarMatcher(grammar: CompiledGrammarHandle, stopTokens?: number[], terminateWithoutStop?: boolean, maxRollback?: number): Promise<MatcherHandle> };
  /** The WASM heap view of a std::vector<int32_t> handle: valid until the next allocation in the module. */
  vecIntView(vector: unknown): Int32Array;
  /** JSON schema → EBNF (compact layout, strict): throws (and fills errorLines) on a schema it cannot convert. */
  schemaToEBNF(schema: string): string;
  /** Lines xgrammar printed as errors, e.g. `[FATAL] .../regex_converter.cc:75: Regex parsing error ...`; clear at will. */
  errorLines: string[];
}

export interface TokenizerInfoHandle {
  dispose(): void;
}

export interface CompiledGrammarHandle {
  dispose(): void;
}

export interface GrammarCompilerHandle {
  compileJSONSchema(schema: string, anyWhitespace?: boolean, indent?: number, separators?: [string, string], strictMode?: boolean, maxWhitespaceCnt?: number): Promise<CompiledGrammarHandle>;
  dispose(): void;
}

/** The embind object behind a GrammarMatcher: called directly, synchronously, on the hot path. */
export interface MatcherHandle {
  handle: {
    AcceptToken(token: number, verbose: boolean): boolean;
    GetNextTokenBitmask(vocabSize: number): { delete(): void };
    IsTerminated(): boolean;
    Rollback(n: number): void;
    FindJumpForwardString(): string;
  };
  dispose(): void;
}

const ANCHOR = 'exports.default = index;';
const INIT = 'binding = await Module();';

let loaded: Promise<XGrammar> | null = null;

/** Loads the module once per thread; later calls share it. */
export function loadXGrammar(): Promise<XGrammar> {
  loaded ??= compile();
  return loaded;
}

async function compile(): Promise<XGrammar> {
  const path = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  const source = readFileSync(path, 'utf8');
  if (!source.includes(ANCHOR) || !source.includes(INIT)) {
    throw new Error(`${path}: not the @mlc-ai/web-xgrammar bundle this server was built against`);
  }
  const patched = source
    .replace(INIT, 'binding = await Module({ printErr: (line) => { exports.errorLines.push(String(line)); } });')
    .replace(
      ANCHOR,
      `${ANCHOR}
  exports.errorLines = [];
  exports.vecIntView = (vector) => binding.vecIntToView(vector);
  exports.schemaToEBNF = (schema) => binding._JSONSchemaToEBNF(schema, false, undefined, undefined, true, undefined, binding.JSONFormat.kJSON);
  exports.init = asyncInitBinding;`,
    );
  const mod = new Module(path) as Module & { _compile(source: string, path: string): void; exports: XGrammar & { init(): Promise<void> } };
  mod.filename = path;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(path));
  mod._compile(patched, path);
  await mod.exports.init();
  return mod.exports;
}
