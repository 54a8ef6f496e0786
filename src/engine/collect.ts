import type { Job, JobResult, SamplingParams } from './types.js';

/** Sampling that is plain argmax: what lossless comparisons, benches and tools run. */
export const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, seed: null };

/** Reads a job to its end: every token id, the whole text, and its result (rejects as the job does). */
export async function collectJob(job: Job): Promise<{ ids: number[]; text: string; result: JobResult }> {
  const ids: number[] = [];
  let text = '';
  for await (const chunk of job) {
    for (const id of chunk.tokens) ids.push(id);
    text += chunk.text;
  }
  return { ids, text, result: await job.result };
}
