import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SHAPES, shapeConfig, writeShapeTokenizer } from '../../bench/shape-model.js';
import { parseHfConfig } from '../../src/model/builder/sources/hf-config.js';
import { loadHfTokenizer } from '../../src/model/tokenizer/hf-tokenizer.js';

const root = mkdtempSync(join(tmpdir(), 'shape-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The weights of a real shape take a minute to write, so this checks what a mistake would hide in: the config, read
// as the builder reads it, and the one kind of vocabulary made here (the others are the packages' files as they are).
describe.each(Object.keys(SHAPES))('shape %s', (name) => {
  it('has a config the builder reads, and a YaRN variant over a longer context', () => {
    const c = parseHfConfig(shapeConfig(name));
    expect(c.vocabSize).toBe(SHAPES[name].config.vocab_size);
    expect(c.numHeads % c.numKvHeads).toBe(0);
    const long = parseHfConfig(shapeConfig(name, { yarnFactor: 4 }));
    expect(long.maxPositions).toBe(4 * c.maxPositions);
    expect(long.ropeAttentionFactor).toBeCloseTo(1 + 0.1 * Math.log(4), 12);
  });
});

// A derived vocabulary (Qwen3's pieces cut to SmolLM2's 49,152, its specials first) loads, round-trips text and
// renders chats whose turns end with the config's eos token.
it('the derived SmolLM2 tokenizer round-trips text and ends chat turns with eos', () => {
  const dir = join(root, 'smollm2-360m');
  writeShapeTokenizer('smollm2-360m', dir);
  const c = parseHfConfig(shapeConfig('smollm2-360m'));
  const tok = loadHfTokenizer(dir);
  const text = 'Retrieval-augmented prompts: 12,345 tokens, naïve café — 日本語.';
  const ids = tok.encode(text, { addSpecialTokens: false });
  expect(Math.max(...ids)).toBeLessThan(c.vocabSize);
  expect(tok.decode(ids)).toBe(text);
  const chat = tok.encode(tok.renderChat([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }]), { addSpecialTokens: false });
  expect(chat.filter((id) => c.eosTokenIds.includes(id))).toHaveLength(3);
});
