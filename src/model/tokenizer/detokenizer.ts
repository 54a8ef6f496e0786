/**
 * Streaming token ids → text deltas without ever emitting half a UTF-8 character, and with the same text whatever
 * the batch cuts.
 *
 * Decode a short window (a few ids of left context, then the ids not final yet) and emit what the window's text adds
 * past what was already emitted. Left context keeps tokenizers that treat a sequence's first token specially
 * (SentencePiece strips its leading space) consistent with a full decode.
 *
 * Decoders turn the byte stream into text the WHATWG way: a byte that cannot continue a character becomes U+FFFD at
 * once, and only an unfinished character at the very end shows as a U+FFFD that later bytes may still change. So
 * everything before a trailing U+FFFD is final, and the trailing one waits for more ids (or the flush).
 */
import type { TextTokenizer } from './types.js';

/** A character is at most 4 bytes, so at most 4 byte tokens. */
const MAX_CHARACTER_TOKENS = 4;
const REPLACEMENT = '\uFFFD';

export interface DetokenizerOptions {
  /** Default true: chat output should not show <|im_end|> and the like. */
  skipSpecialTokens?: boolean;
  /**
   * Tokens that precede the streamed ones (the end of the prompt): decoded as context, never emitted. Without them
   * the first streamed token is decoded as the start of a sequence, exactly as `decode(streamed)` would.
   */
  contextIds?: ArrayLike<number>;
}

export class IncrementalDetokenizer {
  /** The window: `contextLength` ids already read, then the ids whose text may not be final. */
  private ids: number[] = [];
  private contextLength = 0;
  /** Characters of the window's text already emitted (or the context's): a delta starts here. */
  private emitted = 0;
  private readonly decodeOptions: { skipSpecialTokens: boolean };

  constructor(
    private readonly tokenizer: TextTokenizer,
    options: DetokenizerOptions = {},
  ) {
    this.decodeOptions = { skipSpecialTokens: options.skipSpecialTokens ?? true };
    const context = options.contextIds;
    if (context && context.length > 0) {
      // A few context tokens suffice: enough to cover one partial character and a leading-space rule.
      for (let i = Math.max(0, context.length - MAX_CHARACTER_TOKENS); i < context.length; i++) this.ids.push(context[i]);
      this.contextLength = this.ids.length;
      this.emitted = this.decode(this.ids.length).length;
    }
  }

  /** Adds one or more ids; returns the text they complete (possibly ''). */
  push(ids: number | ArrayLike<number>): string {
    if (typeof ids === 'number') this.ids.push(ids);
    else for (let i = 0; i < ids.length; i++) this.ids.push(ids[i]);
    return this.advance(false);
  }

  /** At the end of the stream: whatever is held back, even if it ends in an incomplete character. */
  flush(): string {
    return this.advance(true);
  }

  private advance(force: boolean): string {
    if (this.ids.length === this.contextLength) return '';
    const text = this.decode(this.ids.length);
    const final = !force && text.endsWith(REPLACEMENT) ? text.length - 1 : text.length;
    const delta = final > this.emitted ? text.slice(this.emitted, final) : '';
    this.emitted = Math.max(this.emitted, final);
    if (final === text.length) this.cut(this.ids.length, text.length);
    else if (this.ids.length - this.contextLength > MAX_CHARACTER_TOKENS) this.cutBefore(text, final);
    return delta;
  }

  /**
   * Invalid bytes keep the window's text ending in U+FFFD while ids pile up: move the window on at a recent cut
   * after which no byte before it can change. A cut qualifies when the text up to it is a prefix of the final text.
   */
  private cutBefore(text: string, final: number): void {
    const end = this.ids.length;
    for (let at = end - 1; at > this.contextLength && at >= end - MAX_CHARACTER_TOKENS; at--) {
      const head = this.decode(at);
      if (head.length <= final && text.startsWith(head)) return this.cut(at, head.length);
    }
  }

  /** The ids before `at` (whose text is `headLength` characters long) become context; their last few stay. */
  private cut(at: number, headLength: number): void {
    const from = Math.max(0, at - MAX_CHARACTER_TOKENS);
    const emittedPastCut = this.emitted - headLength;
    this.ids.splice(0, from);
    this.contextLength = at - from;
    this.emitted = this.decode(this.contextLength).length + emittedPastCut;
  }

  private decode(end: number): string {
    return this.tokenizer.decode(end === this.ids.length ? this.ids : this.ids.slice(0, end), this.decodeOptions);
  }
}
