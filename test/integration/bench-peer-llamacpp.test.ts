import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeChart, renderLlamaCppPeer, runLlamaCppPeer } from '../../bench/peer/llamacpp.js';
import { SyntheticSource } from '../../src/model/builder/sources/synthetic.js';
import { FAMILIES } from '../helpers/families.js';
import { loadLlamaCpp } from '../helpers/llamacpp.js';
import { writeFamilyGguf } from '../unit/gguf-model-writer.js';

const root = mkdtempSync(join(tmpdir(), 'bench-peer-llamacpp-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const available = (await loadLlamaCpp().then(async (r) => (r === null ? false : (await r.dispose(), true))));
if (!available) console.warn('skipping the peer-llamacpp bench test: node-llama-cpp does not load here');

describe.skipIf(!available)('bench peer-llamacpp', () => {
  it('runs llama.cpp plain and input-lookup against our engine off and on, on one GGUF, and reports agreement', async () => {
    const family = FAMILIES.find((f) => f.name === 'llama3')!;
    const gguf = join(root, 'tiny.gguf');
    writeFamilyGguf(gguf, family, new SyntheticSource(family.config, 2));
    const r = await runLlamaCppPeer({
      model: gguf, engineModel: null,
      dtype: null, contextLength: null, maxTokens: 12, rounds: 2, threads: 1, layout: 'hier', seed: 1, log: () => {},
      // Prompts of exactly 9 and 40 ids, the two texts' ids repeated.
      prompts: [{ text: 'abc abc abc' }, { text: 'hello there' }], promptTokens: [9, 40],
    });
    expect(r.promptTokens).toEqual([9, 40]);
    expect(r.arms.map((a) => a.arm)).toEqual(['llama.cpp plain', 'llama.cpp input-lookup', 'ours off', 'ours lookahead']);
    for (const a of r.arms) {
      expect(a.ids).toHaveLength(2);
      expect(a.tokens).toBeGreaterThan(0);
      expect(a.tokensPerSecond).toBeGreaterThan(0);
    }
    // Same weights, same prompt ids, greedy: every arm agrees with llama.cpp's plain decoding.
    expect(r.agreement).toEqual({ 'llama.cpp plain': 2, 'llama.cpp input-lookup': 2, 'ours off': 2, 'ours lookahead': 2 });
    expect(r.arms.find((a) => a.arm === 'ours lookahead')!.tokensPerStep).toBeGreaterThanOrEqual(1);
    expect(renderLlamaCppPeer(r)).toContain('| ours lookahead |');
    // Paired per prompt over both rounds: each side's speculation against its own plain decoding, and the plain engines.
    expect(Object.keys(r.paired)).toEqual(['ours lookahead / ours off', 'llama.cpp input-lookup / llama.cpp plain', 'ours off / llama.cpp plain', 'ours lookahead / llama.cpp input-lookup']);
    for (const i of Object.values(r.paired)) {
      expect(i!.n).toBe(2);
      expect(i!.low).toBeLessThanOrEqual(i!.estimate);
      expect(i!.high).toBeGreaterThanOrEqual(i!.estimate);
    }
    for (const a of r.arms) {
      expect(a.perPrompt.every((x) => x > 0)).toBe(true);
      // Time to first token per prompt, and the decode rate after it.
      expect(a.firstTokenSeconds).toHaveLength(2);
      expect(a.firstTokenSeconds.every((x) => x > 0)).toBe(true);
      expect(a.decodeTokensPerSecond).toBeGreaterThan(0);
      expect(a.decodePerPrompt).toHaveLength(2);
      expect(a.decodePerPrompt.every((x) => x > 0)).toBe(true);
    }
    expect(renderLlamaCppPeer(r)).toMatch(/- ours lookahead \/ ours off: [0-9.]+ \[[0-9.]+, [0-9.]+\]/);
    // Plain against plain per prompt length, and the decode speed of every arm against it as a chart.
    expect(renderLlamaCppPeer(r)).toMatch(/\| 40 \| [0-9.]+ \/ [0-9.]+ s \(×[0-9.]+ faster\) \| [0-9.]+ \/ [0-9.]+ \(×[0-9.]+\) \|/);
    const svg = decodeChart(r);
    expect(svg).toMatch(/^<svg/);
    expect((svg.match(/<circle /g) ?? []).length).toBe(8);
  });
});
