/**
 * bench write-gguf on every family: the GGUF it writes from an HF checkpoint says what the family's own GGUF says
 * (read back by our loader), and llama.cpp runs its quantized form.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGgufFromHf } from '../../bench/write-gguf.js';
import { openGguf } from '../../src/model/builder/sources/gguf/index.js';
import { SyntheticSource } from '../../src/model/builder/sources/synthetic.js';
import { FAMILIES } from '../helpers/families.js';
import { loadLlamaCpp, type LlamaCppRunner } from '../helpers/llamacpp.js';
import { writeFamilyGguf, writeFamilyHfDir } from '../unit/gguf-model-writer.js';
import { byteLevelTokenizerJson, defaultConfig } from '../unit/tokenizer-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'write-gguf-families-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let llamaCpp: LlamaCppRunner | null = null;
beforeAll(async () => {
  llamaCpp = await loadLlamaCpp();
  if (llamaCpp === null) console.warn('skipping the llama.cpp runs: node-llama-cpp has no prebuilt binary that loads here');
});
afterAll(() => llamaCpp?.dispose());

describe.each(FAMILIES.map((f) => [f.name, f] as const))('write-gguf, %s family', (name, family) => {
  const hfDir = join(root, name);
  beforeAll(() => {
    const source = new SyntheticSource(family.config, 3);
    writeFamilyHfDir(hfDir, family, source);
    // A byte-level BPE of 265 pieces: the GGUF pads it to the embedding's 320 rows.
    writeFileSync(join(hfDir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson()));
    writeFileSync(join(hfDir, 'tokenizer_config.json'), JSON.stringify(defaultConfig()));
    writeFamilyGguf(join(root, `${name}.family.gguf`), family, source);
  });

  it('reads back as the family GGUF does, with the same weights', () => {
    const out = join(root, `${name}.F32.gguf`);
    writeGgufFromHf(hfDir, out, 'F32');
    const [ours, reference] = [openGguf(out), openGguf(join(root, `${name}.family.gguf`))];
    expect(ours.config).toEqual(reference.config);
    expect(ours.tensor('model.layers.0.mlp.down_proj.weight')).toEqual(reference.tensor('model.layers.0.mlp.down_proj.weight'));
  });

  it('runs in llama.cpp as Q4_K', async () => {
    const out = join(root, `${name}.Q4_K.gguf`);
    writeGgufFromHf(hfDir, out, 'Q4_K');
    if (llamaCpp === null) return;
    const { tokens, probs } = await llamaCpp.greedy(out, [1, 40, 7, 300], 4, family.config.vocabSize);
    expect(tokens).toHaveLength(4);
    expect(probs.every((p) => Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-3)).toBe(true);
  });
});
