/**
 * Chat prompt rendering shared by every tokenizer kind: a model's Jinja chat template (from tokenizer_config.json
 * or GGUF metadata) rendered with @huggingface/jinja, or a plain fallback for models that ship none.
 */
import { Template } from '@huggingface/jinja';
import { InvalidRequestError } from '../../errors.js';
import type { ChatMessage, ChatRenderOptions } from './types.js';

export interface ChatTemplateSource {
  /** Jinja source; null when the model has no chat template. */
  template: string | null;
  bosToken: string | null;
  eosToken: string | null;
}

/**
 * Used when a model has no chat template (base models such as stories260K): one `role: content` line per message,
 * then `assistant:` as the generation prompt. Example: "system: Be brief.\nuser: Hi\nassistant:".
 */
export function renderFallbackChat(messages: readonly ChatMessage[]): string {
  let text = '';
  for (const m of developerAsSystem(messages)) text += `${m.role}: ${m.content}\n`;
  return text + 'assistant:';
}

/** Probe used at load to learn whether the template writes BOS itself. */
const PROBE_MESSAGES: ChatMessage[] = [{ role: 'user', content: 'Hello' }];

export class ChatTemplate {
  /** True when a rendered prompt starts with the BOS string, so encoding must not add another BOS. */
  readonly addsBos: boolean;
  /** gpt-oss's template has a developer turn of its own; the others would drop it or fail on it. */
  private readonly namesDeveloper: boolean;
  private readonly compiled: Template | null;
  /** A template that does not parse is reported on use, not at load: completions still work without it. */
  private readonly parseError: string | null;

  constructor(private readonly source: ChatTemplateSource) {
    let compiled: Template | null = null;
    let parseError: string | null = null;
    if (source.template !== null) {
      try {
        compiled = new Template(source.template);
      } catch (err) {
        parseError = errorMessage(err);
      }
    }
    this.compiled = compiled;
    this.parseError = parseError;
    this.namesDeveloper = source.template !== null && /['"]developer['"]/.test(source.template);
    this.addsBos = this.probeAddsBos();
  }

  get hasTemplate(): boolean {
    return this.source.template !== null;
  }

  /** Templates written for tool use (Qwen, Hermes, Llama 3.1, Mistral) read `tools`; plain ChatML ignores it. */
  get takesTools(): boolean {
    return this.compiled !== null && /\btools\b/.test(this.source.template!);
  }

  /** Thinking templates (Qwen3, SmolLM3, Phi-4-mini-reasoning) close a think block somewhere in their source. */
  get thinks(): boolean {
    return this.compiled !== null && this.source.template!.includes('</think>');
  }

  /** Template kwargs are extra variables; they cannot replace the messages, the tools or the special-token strings. */
  render(messages: readonly ChatMessage[], options: ChatRenderOptions = {}): string {
    if (this.source.template === null) return renderFallbackChat(messages);
    if (this.compiled === null) {
      throw new InvalidRequestError(`The model's chat template cannot be parsed: ${this.parseError}`, 'messages');
    }
    try {
      return this.compiled.render({
        ...options.templateKwargs,
        messages: this.namesDeveloper ? messages : developerAsSystem(messages),
        ...(options.tools && options.tools.length > 0 && { tools: options.tools }),
        add_generation_prompt: true,
        bos_token: this.source.bosToken ?? '',
        eos_token: this.source.eosToken ?? '',
      });
    } catch (err) {
      throw new InvalidRequestError(`The model's chat template failed to render: ${errorMessage(err)}`, 'messages');
    }
  }

  private probeAddsBos(): boolean {
    const bos = this.source.bosToken;
    if (!bos || this.compiled === null) return false;
    try {
      return this.render(PROBE_MESSAGES).startsWith(bos);
    } catch {
      // Templates that reject the probe (e.g. they demand a system message) still reveal BOS in their source.
      return this.source.template!.includes('bos_token');
    }
  }
}

/**
 * OpenAI's `developer` messages (what the AI SDK and LangChain send for newer model ids) as the system turn, as
 * llama.cpp's server maps them: Qwen's templates drop an unknown role silently and Gemma 3's fails on it.
 */
export function developerAsSystem(messages: readonly ChatMessage[]): readonly ChatMessage[] {
  return messages.some((m) => m.role === 'developer') ? messages.map((m) => (m.role === 'developer' ? { ...m, role: 'system' } : m)) : messages;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
