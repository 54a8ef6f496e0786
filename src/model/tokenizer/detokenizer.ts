/**
 * Streaming token ids → text deltas without ever emitting half a UTF-8 character.
 *
 * The prefix/read-offset method: decode a short window that starts a few tokens before the unread ones and emit
 * what the unread tokens add to the window's text. Decoding with some left context keeps tokenizers that treat a
 * sequence's first token specially (SentencePiece strips its leading space) consistent with a full decode. A window
 * whose text ends in U+FFFD is an incomplete character: wait for more tokens.
 */
import type { TextTokenizer } from './types.js';

/** A character is at most 4 bytes, so at most 4 byte tokens. */
const MAX_CHARACTER_TOKENS = 4;

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
  /** Text of ids[0, readOffset): a delta is what the window's text adds to it. */
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
      for (let i = Math.max(0, context.length - MAX_CHARACTER_TOKENS); i < context.length; i++) this.ids.push(context[i]);
      this.readOffset = this.ids.length;
      this.prefixText = tokenizer.decode(this.ids, this.decodeOptions);
    }
  }

  /** Adds one or more ids; returns the text they complete (possibly ''). */
  push(ids: number | ArrayLike<number>): string {
    if (typeof ids === 'number') {
      this.ids.push(ids);
      return this.advance(1, false);
    }
    for (let i = 0; i < ids.length; i++) this.ids.push(ids[i]);
    return this.advance(ids.length, false);
  }

  /** At the end of the stream: whatever is held back, even if it ends in an incomplete character. */
  flush(): string {
    return this.advance(0, true);
  }

  private advance(added: number, force: boolean): string {
    const end = this.ids.length;
    if (end === this.readOffset) return '';
    const text = this.decodeWindow(end);
    if (force || this.isComplete(text)) return this.emit(text, end);
    // Several ids at once may end in a partial character: emit up to it. Shorter windows ending before this
    // push's ids were already found incomplete by earlier calls.
    for (let back = 1; back < added && back < MAX_CHARACTER_TOKENS; back++) {
      const shorter = this.decodeWindow(end - back);
      if (this.isComplete(shorter)) return this.emit(shorter, end - back);
    }
    // More unread ids than any character needs: the bytes are invalid, not unfinished.
    if (end - this.readOffset > MAX_CHARACTER_TOKENS) return this.emit(text, end);
    return '';
  }

  private decodeWindow(end: number): string {
    return this.tokenizer.decode(end === this.ids.length ? this.ids : this.ids.slice(0, end), this.decodeOptions);
  }

  private isComplete(text: string): boolean {
    return text.length > this.prefixText.length && !text.endsWith('\uFFFD');
  }

  /** Emits the window's text up to `end`; the ids just read become the next window's prefix. */
  private emit(text: string, end: number): string {
    const delta = text.length > this.prefixText.length ? text.slice(this.prefixText.length) : '';
    this.ids.splice(0, this.readOffset);
    this.readOffset = end - this.readOffset;
    this.prefixText = this.decodeWindow(this.readOffset);
    return delta;
  }
}
