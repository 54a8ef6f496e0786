/**
 * Streaming token ids → text deltas without ever emitting half a UTF-8 character.
 *
 * The prefix/read-offset method: decode a short window that starts a few tokens before the unread ones and emit
 * what the unread tokens add to the window's text. Decoding with some left context keeps tokenizers that treat a
 * sequence's first token specially (SentencePiece strips its leading space) consistent with a full decode. A window
 * whose text ends in U+FFFD is an incomplete character: wait for more tokens.
 */
import type { TextTokenizer } from './types.js';

/** A character is at most 4 bytes, so at most 4 byte tokens: more unread tokens than this means genuinely bad bytes. */
const MAX_PENDING_TOKENS = 4;

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
  /** The window: ids from the prefix offset on; earlier ids are never needed again. */
  private ids: number[] = [];
  /** Window-relative start of the unread ids. */
  private readOffset = 0;
  /** Text of ids[0, readOffset), cached so each push decodes once. */
  private prefixText = '';
  private readonly decodeOptions: { skipSpecialTokens: boolean };

  constructor(
    private readonly tokenizer: TextTokenizer,
    options: DetokenizerOptions = {},
  ) {
    this.decodeOptions = { skipSpecialTokens: options.skipSpecialTokens ?? true };
    const context = options.contextIds;
    if (context && context.length > 0) {
      // A few context tokens suffice: enough to cover one partial character and a leading-space rule.
      for (let i = Math.max(0, context.length - MAX_PENDING_TOKENS); i < context.length; i++) this.ids.push(context[i]);
      this.readOffset = this.ids.length;
      this.prefixText = tokenizer.decode(this.ids, this.decodeOptions);
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
    if (this.ids.length === this.readOffset) return '';
    const text = this.tokenizer.decode(this.ids, this.decodeOptions);
    const pending = this.ids.length - this.readOffset;
    const complete = text.length > this.prefixText.length && !text.endsWith('\uFFFD');
    if (!complete && !force && pending <= MAX_PENDING_TOKENS) return '';

    const delta = text.length > this.prefixText.length ? text.slice(this.prefixText.length) : '';
    // The newly read ids become the next window's prefix.
    this.ids.splice(0, this.readOffset);
    this.readOffset = this.ids.length;
    this.prefixText = this.tokenizer.decode(this.ids, this.decodeOptions);
    return delta;
  }
}
