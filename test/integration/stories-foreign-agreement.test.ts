import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../src/model/builder/cache.js';
import { DEFAULT_BUILD_OPTIONS } from '../../src/model/builder/options.js';
import { openGguf } from '../../src/model/builder/sources/gguf/index.js';
import { openBuiltModel } from '../../src/model/runtime/built-model.js';
import { openForeignModel } from '../../src/model/runtime/foreign-model.js';
import type { LoadedModel } from '../../src/model/types.js';
import { SHARED_DATA } from '../helpers/paths.js';
import { withContextLength } from '../../src/model/builder/source.js';

const DIR = join(SHARED_DATA, 'models/stories260K');
const present = existsSync(join(DIR, 'onnx/model.onnx')) && existsSync(join(DIR, 'stories260Ktok512.gguf'));
if (!present) console.warn(`SKIPPED stories260K graph-vs-export test: ${DIR} is absent`);

/** Largest |a-b| relative to the largest |b| of the row: logits scale differs per row, so absolute error misleads. */
function maxRelativeError(a: Float32Array, b: Float32Array, vocab: number): number {
  let worst = 0;
  for (let r = 0; r < a.length / vocab; r++) {
    let scale = 0;
    let diff = 0;
    for (let v = r * vocab; v < (r + 1) * vocab; v++) {
      scale = Math.max(scale, Math.abs(b[v]));
      diff = Math.max(diff, Math.abs(a[v] - b[v]));
    }
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}

describe.skipIf(!present)('stories260K: our graph from the GGUF vs the foreign export of the same weights', () => {
  let ours: LoadedModel;
  let foreign: LoadedModel;
  const cacheDir = mkdtempSync(join(tmpdir(), 'lookahead-agree-'));

  beforeAll(async () => {
    const source = withContextLength(openGguf(join(DIR, 'stories260Ktok512.gguf')), 512);
    ours = await openBuiltModel(await ensureBuilt(source, DEFAULT_BUILD_OPTIONS, cacheDir, () => {}), { threads: 1 });
    foreign = await openForeignModel(DIR, { threads: 1 });
  });
  afterAll(async () => {
    await ours?.dispose();
    await foreign?.dispose();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('logits agree within 1e-4 relative error over a prefill and chained steps', async () => {
    const vocab = ours.info.vocabSize;
    expect(foreign.info.vocabSize).toBe(vocab);
    const a = ours.newSequence();
    const b = foreign.newSequence();
    const prompt = Int32Array.of(1, 403, 407, 261, 378, 432, 383, 286, 263, 377);
    const positions = Int32Array.from(prompt, (_, i) => i);
    let worst = maxRelativeError(await a.forward({ tokens: prompt, positions, mask: null }), await b.forward({ tokens: prompt, positions, mask: null }), vocab);
    // Then chunks of 1..4 tokens on top of the cache, as chain drafts would be verified.
    let at = prompt.length;
    for (let step = 0; step < 20; step++) {
      const k = 1 + (step % 4);
      const tokens = Int32Array.from({ length: k }, (_, i) => (step * 37 + i * 11 + 5) % vocab);
      const pos = Int32Array.from({ length: k }, (_, i) => at + i);
      worst = Math.max(worst, maxRelativeError(await a.forward({ tokens, positions: pos, mask: null }), await b.forward({ tokens, positions: pos, mask: null }), vocab));
      at += k;
    }
    expect(worst).toBeLessThanOrEqual(1e-4);
    console.log(`max relative logit error: ${worst.toExponential(2)}`);
    a.dispose();
    b.dispose();
  });
});
