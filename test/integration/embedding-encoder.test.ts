import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SentenceEncoder } from '../../src/model/embedding/encoder.js';
import { TINY_BERT, writeBertExport } from '../helpers/bert-export.js';

/**
 * The local embedding model against transformers.js on the same random BERT export (mean and CLS pooling, both
 * normalized): same vectors per input, whatever else shares the batch; long inputs cut as sentence-transformers
 * cuts them (HF tokenizers keep [SEP] at the end; transformers.js drops it, so it is not the reference there).
 */
const TEXTS = [
  'What is the prefix cache?',
  'A document about the server, its model and its tokens.',
  'Short',
  'UPPERCASE, punctuation; and (brackets) - all of it!',
  'the answer to the question is in the document of the model '.repeat(10),
  'x',
];
const LONG = 'the answer to the question is in the document of the model '.repeat(30);

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'embedding-encoder-'));
  writeBertExport(join(root, 'mean-bert'), TINY_BERT);
  writeBertExport(join(root, 'cls-bert'), { ...TINY_BERT, pooling: 'cls', seed: 11 });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

async function transformersJs(dir: string, pooling: 'mean' | 'cls'): Promise<number[][]> {
  const tjs = await import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = dirname(dir);
  const extract = await tjs.pipeline('feature-extraction', basename(dir), { dtype: 'fp32', device: 'cpu' });
  try {
    return (await extract(TEXTS, { pooling, normalize: true })).tolist() as number[][];
  } finally {
    await extract.dispose();
  }
}

describe('SentenceEncoder on a tiny BERT export', () => {
  for (const pooling of ['mean', 'cls'] as const) {
    it(`agrees with transformers.js per input (${pooling} pooling, cosine >= 0.99999)`, async () => {
      const dir = join(root, `${pooling}-bert`);
      const encoder = await SentenceEncoder.load(dir, 1);
      try {
        expect(encoder.info).toEqual({ dimensions: TINY_BERT.hidden, maxTokens: TINY_BERT.maxPositions, pooling });
        const { vectors, tokens } = await encoder.embed(TEXTS);
        const ids = encoder.tokenize(TEXTS);
        expect(tokens).toBe(ids.reduce((n, r) => n + r.length, 0));
        expect(Math.max(...ids.map((r) => r.length))).toBeLessThanOrEqual(TINY_BERT.maxPositions);
        const theirs = await transformersJs(dir, pooling);
        const dim = TINY_BERT.hidden;
        TEXTS.forEach((_, i) => {
          const ours = vectors.subarray(i * dim, (i + 1) * dim);
          expect(cosine(ours, ours)).toBeCloseTo(1, 6);
          expect(Math.hypot(...ours)).toBeCloseTo(1, 5);
          expect(cosine(ours, theirs[i]), `input ${i}`).toBeGreaterThanOrEqual(0.99999);
        });
      } finally {
        await encoder.release();
      }
    }, 60_000);
  }

  it('cuts a long input to the model length, keeping [CLS] first and [SEP] last', async () => {
    const encoder = await SentenceEncoder.load(join(root, 'mean-bert'), 1);
    try {
      const [short, long] = encoder.tokenize([TEXTS[0], LONG]);
      expect(long).toHaveLength(TINY_BERT.maxPositions);
      expect(long[0]).toBe(short[0]);
      expect(long.at(-1)).toBe(short.at(-1));
      expect((await encoder.embed([LONG])).tokens).toBe(TINY_BERT.maxPositions);
    } finally {
      await encoder.release();
    }
  });

  it('gives an input the same vector alone as among longer ones (padding changes nothing)', async () => {
    const encoder = await SentenceEncoder.load(join(root, 'mean-bert'), 1);
    try {
      const dim = TINY_BERT.hidden;
      const { vectors } = await encoder.embed(TEXTS);
      for (let i = 0; i < TEXTS.length; i++) {
        const alone = (await encoder.embed([TEXTS[i]])).vectors;
        const batched = vectors.subarray(i * dim, (i + 1) * dim);
        expect(Math.max(...alone.map((v, d) => Math.abs(v - batched[d])))).toBeLessThan(1e-5);
      }
    } finally {
      await encoder.release();
    }
  });
});
