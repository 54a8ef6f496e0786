/** A tool call in an assistant turn, as chat templates read it: `arguments` parsed to an object. */
export interface ChatToolCall {
  id?: string;
  type: 'function';
  function: { name: string; arguments: unknown };
}

export interface ChatMessage {
  role: string;
  content: string;
  tool_calls?: ChatToolCall[];
  /** On `tool` turns: the call this result answers. */
  tool_call_id?: string;
  name?: string;
}

/** A function the model may call, in the shape chat templates take as their `tools` variable. */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

export interface ChatRenderOptions {
  /** Extra variables for the chat template, e.g. Qwen3's `enable_thinking` (a request's `chat_template_kwargs`). */
  templateKwargs?: Record<string, unknown>;
  /** The functions offered, for templates that read `tools` (omitted when none are). */
  tools?: readonly ChatTool[];
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
  /** True when the chat template reads the `tools` variable (and so renders tools and tool turns itself). */
  readonly chatTemplateTakesTools: boolean;
  /** True when the chat template writes think blocks (`<think>…</think>`): the output may begin with thinking. */
  readonly chatTemplateThinks: boolean;
  /** True when the rendered chat prompt already contains BOS (so encode must not add another). */
  readonly chatTemplateAddsBos: boolean;
  /**
   * The raw bytes a token stands for in generated text, or null for special and control tokens, which never stand
   * for text (a grammar must never allow them inside the output).
   */
  tokenBytes(id: number): Uint8Array | null;
}
