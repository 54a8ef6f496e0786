/**
 * A Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json, optionally generation_config.json and
 * config.json for special ids) behind the TextTokenizer contract, via @huggingface/tokenizers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelLoadError } from '../../errors.js';
import { ChatTemplate } from './chat-template.js';
import { tokenBytesReader } from './token-bytes.js';
import type { ChatMessage, ChatTool, TextTokenizer } from './types.js';

type Json = Record<string, unknown>;

export function loadHfTokenizer(dir: string): TextTokenizer {
  const tokenizerJson = readJson(dir, 'tokenizer.json', true)!;
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json', true)!;
  const generationConfig = readJson(dir, 'generation_config.json', false);
  const modelConfig = readJson(dir, 'config.json', false);

  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (err) {
    throw new ModelLoadError(`${join(dir, 'tokenizer.json')}: unsupported or corrupt tokenizer: ${(err as Error).message}`, {
      cause: err,
    });
  }

  const bosToken = tokenString(tokenizerConfig.bos_token);
  const eosToken = tokenString(tokenizerConfig.eos_token);
  const bosTokenId = bosToken === null ? null : (tokenizer.token_to_id(bosToken) ?? null);

  const eos = new Set<number>();
  for (const config of [generationConfig, modelConfig]) {
    for (const id of idList(config?.eos_token_id)) eos.add(id);
  }
  const eosFromToken = eosToken === null ? undefined : tokenizer.token_to_id(eosToken);
  if (eosFromToken !== undefined) eos.add(eosFromToken);

  let vocabSize = 0;
  for (const id of tokenizer.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);

  const template = typeof tokenizerConfig.chat_template === 'string' ? tokenizerConfig.chat_template : null;
  const pieceBytes = tokenBytesReader(tokenizerJson);
  const bytesOf = (id: number): Uint8Array => {
    const piece = id >= 0 && id < vocabSize ? tokenizer.id_to_token(id) : undefined;
    return piece === undefined ? new Uint8Array(0) : pieceBytes(piece);
  };
  return new HfTokenizer(tokenizer, vocabSize, bosTokenId, [...eos], new ChatTemplate({ template, bosToken, eosToken }), bytesOf);
}

class HfTokenizer implements TextTokenizer {
  readonly chatTemplateAddsBos: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly vocabSize: number,
    readonly bosTokenId: number | null,
    readonly eosTokenIds: readonly number[],
    private readonly chat: ChatTemplate,
    private readonly bytesOf: (id: number) => Uint8Array,
  ) {
    this.chatTemplateAddsBos = chat.addsBos;
  }

  encode(text: string, options?: { addSpecialTokens?: boolean }): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options?.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string {
    // Models often pad their logits past the tokenizer's vocabulary; such ids have no text.
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= 0 && ids[i] < this.vocabSize) known.push(ids[i]);
    }
    // The library throws on an empty list.
    if (known.length === 0) return '';
    return this.tokenizer.decode(known, { skip_special_tokens: options?.skipSpecialTokens ?? false });
  }

  tokenBytes(id: number): Uint8Array {
    return this.bytesOf(id);
  }

  get chatTemplateTakesTools(): boolean {
    return this.chat.takesTools;
  }

  renderChat(messages: ChatMessage[], tools?: ChatTool[]): string {
    return this.chat.render(messages, tools);
  }
}

function readJson(dir: string, name: string, required: boolean): Json | null {
  const path = join(dir, name);
  if (!existsSync(path)) {
    if (required) throw new ModelLoadError(`${path}: file not found`);
    return null;
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelLoadError(`${path}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ModelLoadError(`${path}: expected a JSON object`);
  }
  return value as Json;
}

/** tokenizer_config.json writes special tokens either as strings or as AddedToken objects ({content: ...}). */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  return null;
}

function idList(value: unknown): number[] {
  if (Number.isInteger(value)) return [value as number];
  if (Array.isArray(value)) return value.filter((v): v is number => Number.isInteger(v));
  return [];
}
