import type { BatchItem } from '../types.js';

/** `forwardBatch` for graphs that carry one sequence per forward: the items run one after another. */
export async function forwardEach(items: readonly BatchItem[]): Promise<(Float32Array | Int32Array)[]> {
  const out: (Float32Array | Int32Array)[] = [];
  for (const { seq, input, output, top } of items) out.push(output === 'ids' ? await seq.forwardIds(input, top) : await seq.forward(input));
  return out;
}
