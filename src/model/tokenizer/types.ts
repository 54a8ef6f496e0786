export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatRenderOptions {
  /** Extra variables for the chat template, e.g. Qwen3's `enable_thinking` (a request's `chat_template_kwargs`). */
  templateKwargs?: Record<string, unknown>;
}

/** What the rest of the system needs from a tokenizer, whether from tokenizer.json or embedded in a GGUF. */
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /** Encode text; `addSpecialTokens` adds BOS where the tokenizer's post-processor would. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Decode ids; an empty list gives ''. */
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** Render messages to the prompt string (the model's chat template, or a plain fallback when it has none). */
  renderChat(messages: ChatMessage[], options?: ChatRenderOptions): string;
  /** True when the rendered chat prompt already contains BOS (so encode must not add another). */
  readonly chatTemplateAddsBos: boolean;
}
