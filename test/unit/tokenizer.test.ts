import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError, ModelLoadError } from '../../src/errors.js';
import { ChatTemplate, renderFallbackChat } from '../../src/model/tokenizer/chat-template.js';
import { loadHfTokenizer } from '../../src/model/tokenizer/hf-tokenizer.js';
import {
  byteFallbackTokenizerJson,
  byteLevelTokenizerJson,
  defaultConfig,
  writeTokenizerDir,
} from './tokenizer-fixtures.js';
import { SHARED_DATA } from '../helpers/paths.js';

describe('loadHfTokenizer on a hand-made byte-level BPE', () => {
  const dir = writeTokenizerDir({
    tokenizer: byteLevelTokenizerJson(),
    config: defaultConfig(),
    generation: { eos_token_id: [2, 0] },
  });
  const tok = loadHfTokenizer(dir);

  it('reads vocabulary size and special ids from all config files', () => {
    expect(tok.vocabSize).toBe(265);
    expect(tok.bosTokenId).toBe(1);
    expect([...tok.eosTokenIds].sort()).toEqual([0, 2]);
  });

  it('round-trips text and adds BOS only when asked', () => {
    const text = 'hello wé 😀 日本';
    const withBos = tok.encode(text);
    const plain = tok.encode(text, { addSpecialTokens: false });
    expect(withBos).toEqual([1, ...plain]);
    expect(plain.slice(0, 2)).toEqual([261, 114]); // "hell" merged, then "o"
    expect(tok.decode(plain)).toBe(text);
    expect(tok.decode(withBos, { skipSpecialTokens: true })).toBe(text);
    expect(tok.decode(withBos)).toBe('<s>' + text);
  });

  it('decodes an empty list and ids beyond the vocabulary to empty text', () => {
    expect(tok.decode([])).toBe('');
    expect(tok.decode(Int32Array.of(100_000))).toBe('');
    expect(tok.decode(Int32Array.of(261, 100_000, 114))).toBe('hello');
  });

  it('renders the chat template with BOS and knows it did', () => {
    expect(tok.renderChat([{ role: 'user', content: 'hi' }])).toBe('<s><|user|>hi</s><|assistant|>');
    expect(tok.chatTemplateAddsBos).toBe(true);
  });

  it('gives each token\'s raw bytes (GPT-2 stand-ins mapped back), and none for special tokens', () => {
    expect(tok.tokenBytes(1)).toBeNull();
    expect([...tok.tokenBytes(3 + 0x20)!]).toEqual([0x20]);
    expect([...tok.tokenBytes(261)!]).toEqual([...Buffer.from('hell')]);
    // The merged F0 9F: half of an emoji, not text on its own.
    const emoji = tok.encode('😀', { addSpecialTokens: false });
    expect(Buffer.concat(emoji.map((id) => tok.tokenBytes(id)!)).toString('utf8')).toBe('😀');
    expect([...tok.tokenBytes(emoji[0])!]).toEqual([0xf0, 0x9f]);
  });
});

describe('tokenBytes of a SentencePiece-style (byte fallback) tokenizer.json', () => {
  const tok = loadHfTokenizer(writeTokenizerDir({ tokenizer: byteFallbackTokenizerJson(), config: defaultConfig() }));

  it('maps ▁ to a space and <0xNN> to its byte', () => {
    const ids = tok.encode('hello wé', { addSpecialTokens: false });
    expect(Buffer.concat(ids.map((id) => tok.tokenBytes(id)!)).toString('utf8')).toBe(' hello wé');
    expect([...tok.tokenBytes(3 + 0xc3)!]).toEqual([0xc3]);
    expect(tok.tokenBytes(0)).toBeNull();
  });
});

describe('loadHfTokenizer special cases', () => {
  it('takes eos from config.json and AddedToken-style entries; no bos_token gives null', () => {
    const dir = writeTokenizerDir({
      tokenizer: byteFallbackTokenizerJson(),
      config: defaultConfig({ bos_token: null, eos_token: { content: '</s>' }, chat_template: undefined }),
      model: { eos_token_id: 0 },
    });
    const tok = loadHfTokenizer(dir);
    expect(tok.bosTokenId).toBeNull();
    expect([...tok.eosTokenIds].sort()).toEqual([0, 2]);
    expect(tok.chatTemplateAddsBos).toBe(false);
    expect(tok.renderChat([{ role: 'user', content: 'hi' }])).toBe(renderFallbackChat([{ role: 'user', content: 'hi' }]));
  });

  it('missing files name the file in a ModelLoadError', () => {
    const noConfig = writeTokenizerDir({ tokenizer: byteLevelTokenizerJson() });
    expect(() => loadHfTokenizer(noConfig)).toThrow(ModelLoadError);
    expect(() => loadHfTokenizer(noConfig)).toThrow(/tokenizer_config\.json/);
    const noTokenizer = writeTokenizerDir({ config: defaultConfig() });
    expect(() => loadHfTokenizer(noTokenizer)).toThrow(/tokenizer\.json: file not found/);
  });

  it('corrupt files name the file in a ModelLoadError', () => {
    const truncated = writeTokenizerDir({ tokenizer: JSON.stringify(byteLevelTokenizerJson()).slice(0, 500), config: defaultConfig() });
    expect(() => loadHfTokenizer(truncated)).toThrow(/tokenizer\.json: not valid JSON/);
    const badGeneration = writeTokenizerDir({ tokenizer: byteLevelTokenizerJson(), config: defaultConfig(), generation: '[1,2]' });
    expect(() => loadHfTokenizer(badGeneration)).toThrow(/generation_config\.json: expected a JSON object/);
    const wrongShape = writeTokenizerDir({ tokenizer: { model: { type: 'Nonsense' } }, config: defaultConfig() });
    expect(() => loadHfTokenizer(wrongShape)).toThrow(ModelLoadError);
  });
});

describe('ChatTemplate', () => {
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
  ];

  it('falls back to role-prefixed lines without a template', () => {
    const chat = new ChatTemplate({ template: null, bosToken: '<s>', eosToken: '</s>' });
    expect(chat.hasTemplate).toBe(false);
    expect(chat.render(messages)).toBe('system: Be brief.\nuser: Hi\nassistant:');
    expect(chat.addsBos).toBe(false);
  });

  it('a template that raises turns into an InvalidRequestError carrying its message', () => {
    const chat = new ChatTemplate({
      template: "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok",
      bosToken: null,
      eosToken: null,
    });
    expect(chat.render([{ role: 'user', content: 'x' }])).toBe('ok');
    expect(() => chat.render(messages)).toThrow(InvalidRequestError);
    expect(() => chat.render(messages)).toThrow(/System role not supported/);
  });

  it('a template that does not parse fails on use, not at construction', () => {
    const chat = new ChatTemplate({ template: '{% for m in messages %}', bosToken: null, eosToken: null });
    expect(() => chat.render(messages)).toThrow(InvalidRequestError);
  });

  it('renders developer messages as the system turn unless the template names a developer role', () => {
    const withDeveloper = [{ role: 'developer', content: 'Be brief.' }, messages[1]];
    // Qwen-style: roles it does not know are dropped silently.
    const qwenLike = new ChatTemplate({
      template: "{% for m in messages %}{% if m.role == 'system' or m.role == 'user' %}<{{ m.role }}>{{ m.content }}{% endif %}{% endfor %}",
      bosToken: null,
      eosToken: null,
    });
    expect(qwenLike.render(withDeveloper)).toBe('<system>Be brief.<user>Hi');
    // Gemma 3-style: roles must alternate user/assistant after an optional leading system turn.
    const gemmaLike = new ChatTemplate({
      template: "{% if messages[0]['role'] == 'system' %}{% set rest = messages[1:] %}{% else %}{% set rest = messages %}{% endif %}{% for m in rest %}{% if m.role != 'user' and m.role != 'assistant' %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{{ m.content }}{% endfor %}",
      bosToken: null,
      eosToken: null,
    });
    expect(gemmaLike.render(withDeveloper)).toBe('Hi');
    const gptOssLike = new ChatTemplate({
      template: "{% for m in messages %}{% if m.role == 'developer' %}[dev]{% endif %}<{{ m.role }}>{{ m.content }}{% endfor %}",
      bosToken: null,
      eosToken: null,
    });
    expect(gptOssLike.render(withDeveloper)).toBe('[dev]<developer>Be brief.<user>Hi');
    expect(new ChatTemplate({ template: null, bosToken: null, eosToken: null }).render(withDeveloper)).toBe('system: Be brief.\nuser: Hi\nassistant:');
  });

  it('detects BOS from a template that rejects the probe conversation', () => {
    const chat = new ChatTemplate({
      template: "{% if messages[0]['role'] != 'system' %}{{ raise_exception('need system') }}{% endif %}{{ bos_token }}x",
      bosToken: '<s>',
      eosToken: null,
    });
    expect(chat.addsBos).toBe(true);
    expect(chat.render(messages)).toBe('<s>x');
  });
});

const CHAT_LLAMA = join(SHARED_DATA, 'models/chat-llama-5m');
const DEV_SET = join(SHARED_DATA, 'datasets/rag-eval/dev.jsonl');
const haveChatLlama = existsSync(join(CHAT_LLAMA, 'greedy_reference.json')) && existsSync(DEV_SET);
if (!haveChatLlama) console.warn(`skipping chat-llama-5m tokenizer tests: ${CHAT_LLAMA} or ${DEV_SET} not found`);

describe.skipIf(!haveChatLlama)('chat-llama-5m tokenizer (shared data)', () => {
  interface Case {
    dev_index: number;
    prompt_text: string;
    prompt_ids: number[];
    output_ids: number[];
    text: string;
  }
  const reference = () => JSON.parse(readFileSync(join(CHAT_LLAMA, 'greedy_reference.json'), 'utf8')) as { cases: Case[] };
  const devMessages = () =>
    readFileSync(DEV_SET, 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line).messages as { role: string; content: string }[]);

  it('has no BOS, eos <|im_end|>, and a ChatML template that does not add BOS', () => {
    const tok = loadHfTokenizer(CHAT_LLAMA);
    expect(tok.vocabSize).toBe(4096);
    expect(tok.bosTokenId).toBeNull();
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.chatTemplateAddsBos).toBe(false);
  });

  it('renders and encodes the reference conversations to exactly the reference prompt ids', () => {
    const tok = loadHfTokenizer(CHAT_LLAMA);
    const dev = devMessages();
    const cases = reference().cases;
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const prompt = tok.renderChat(dev[c.dev_index]);
      expect(prompt).toBe(c.prompt_text);
      expect(tok.encode(prompt, { addSpecialTokens: !tok.chatTemplateAddsBos })).toEqual(c.prompt_ids);
    }
  });

  it('decodes the reference outputs to the reference text', () => {
    const tok = loadHfTokenizer(CHAT_LLAMA);
    for (const c of reference().cases) expect(tok.decode(c.output_ids)).toBe(c.text);
  });
});
