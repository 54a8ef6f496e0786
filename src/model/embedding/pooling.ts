export type Pooling = 'mean' | 'cls';

/**
 * Sentence vectors from a padded batch of token states [batch, seq, dim]: the mean over each row's real tokens
 * (mask 1), or its first token's state, then scaled to unit length (cosine similarity becomes a dot product, as
 * sentence-transformers' Normalize module makes it). Sums in float64 so padding never changes a vector.
 */
export function poolBatch(states: Float32Array, batch: number, seq: number, dim: number, lengths: readonly number[], mode: Pooling, out: Float32Array, outOffsets: readonly number[]): void {
  const acc = new Float64Array(dim);
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    const rows = mode === 'cls' ? 1 : lengths[b];
    for (let s = 0; s < rows; s++) {
      const base = (b * seq + s) * dim;
      for (let d = 0; d < dim; d++) acc[d] += states[base + d];
    }
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      acc[d] /= rows;
      norm += acc[d] * acc[d];
    }
    // sentence-transformers' Normalize clamps the norm at 1e-12 as torch's normalize does.
    const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
    const at = outOffsets[b];
    for (let d = 0; d < dim; d++) out[at + d] = acc[d] * scale;
  }
}
