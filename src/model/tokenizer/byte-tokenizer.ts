import { developerAsSystem } from './chat-template.js';
import type { ChatMessage, TextTokenizer } from './types.js';

/**
 * A tokenizer that needs no files: one token per UTF-8 byte, plus BOS and EOS. It serves the embedded synthetic
 * default model, so the server starts on a fresh machine with nothing downloaded.
 */
export class ByteTokenizer implements TextTokenizer {
  readonly vocabSize = 258;
  readonly bosTokenId = 256;
  readonly eosTokenIds = [257] as const;
  readonly chatTemplateAddsBos = false;
  readonly chatTemplateTakesTools = false;
  readonly chatTemplateThinks = false;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    const ids = Array.from(this.encoder.encode(text));
    return options?.addSpecialTokens ? [this.bosTokenId, ...ids] : ids;
  }

  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] < 256) bytes.push(ids[i]);
    return this.decoder.decode(Uint8Array.from(bytes));
  }

  tokenBytes(id: number): Uint8Array | null {
    return id >= 0 && id < 256 ? Uint8Array.of(id) : null;
  }

  renderChat(messages: ChatMessage[]): string {
    return developerAsSystem(messages).map((m) => `${m.role}: ${m.content}\n`).join('') + 'assistant: ';
  }
}
