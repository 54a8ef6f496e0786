import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/builder/build.js';
import { SyntheticSource, syntheticConfig } from '../../src/model/builder/sources/synthetic.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import type { LlamaConfig } from '../../src/model/types.js';
import { maxAbsDiff, referenceForward } from './builder-reference.js';

const root = mkdtempSync(join(tmpdir(), 'builder-graph-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const variants: [string, Partial<LlamaConfig>][] = [
  ['GQA, rotate_half, untied', { numKvHeads: 2, ropeStyle: 'half' }],
  ['GQA, interleaved, tied', { numKvHeads: 2, ropeStyle: 'interleaved', tiedEmbeddings: true }],
  ['Qwen-style biases, rotate_half, tied', { numKvHeads: 4, attentionBias: true, tiedEmbeddings: true }],
  ['Qwen-style biases, interleaved, GQA 4:1', { numKvHeads: 1, ropeStyle: 'interleaved', attentionBias: true }],
];

describe('Llama graph vs a plain-JS reference forward', () => {
  it.each(variants)('%s', async (name, overrides) => {
    const src = new SyntheticSource(syntheticConfig({ hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: 96, ropeTheta: 500, ...overrides }), 7);
    const dir = join(root, name.replace(/\W+/g, '-'));
    await buildModel(src, { dtype: 'fp32', attention: 'onnx', layout: 'tree' }, dir);
    const model = await openBuiltModel(dir);
    const tokens = [3, 17, 42, 5, 88, 1];
    const seq = model.newSequence();
    // Two chunks, so the second one exercises the past-KV path and RoPE at offset positions.
    const a = await seq.forward({ tokens: Int32Array.from(tokens.slice(0, 4)), positions: Int32Array.from([0, 1, 2, 3]), mask: null });
    const b = await seq.forward({ tokens: Int32Array.from(tokens.slice(4)), positions: Int32Array.from([4, 5]), mask: null });
    const ours = new Float32Array([...a, ...b]);
    const ref = referenceForward(src, tokens);
    expect(maxAbsDiff(ours, ref)).toBeLessThanOrEqual(1e-4);
    // The logits must be informative, or agreement would prove nothing.
    expect(Math.max(...ref) - Math.min(...ref)).toBeGreaterThan(1);
    await model.dispose();
  });
});
