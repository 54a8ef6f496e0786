import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toEngineOptions } from '../../src/config/engine-options.js';
import { loadConfig } from '../../src/config/load.js';
import { collectJob, GREEDY } from '../../src/engine/collect.js';
import { createEngine, type TestHooks } from '../../src/engine/index.js';
import { SYNTHETIC_MODEL } from '../../src/model/load.js';
import type { Engine, JobResult, JobSpec, LookaheadOptions } from '../../src/engine/types.js';

export { SHARED_DATA as SHARED } from './paths.js';
import { SHARED_DATA as SHARED } from './paths.js';
export const CHAT_MODEL = join(SHARED, 'models/chat-llama-5m');
export const STORIES_GGUF = join(SHARED, 'models/stories260K/stories260Ktok512.gguf');

export interface TestEngine {
  engine: Engine;
  modelId: string;
  run(promptIds: number[], options?: Partial<JobSpec>): Promise<{ ids: number[]; text: string; result: JobResult }>;
  close(): Promise<void>;
}

export const LOOKAHEAD_OFF: LookaheadOptions = { enabled: false, decodingLength: 1, branchLength: 0, layout: 'hier' };

/** The real engine (worker thread + ORT) on a model (the synthetic one unless --model), build cache in a temp folder. */
export async function startEngine(flags: string[] = [], hooks: TestHooks = {}): Promise<TestEngine> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'lookahead-engine-'));
  const config = loadConfig(['--cache-dir', cacheDir, '--threads', '1', ...withModel(flags)], {});
  const options = toEngineOptions(config);
  const engine = await createEngine(options, () => {}, hooks);
  const modelId = engine.models[0].id;
  return {
    engine,
    modelId,
    async run(promptIds, spec = {}) {
      const job = engine.submit(modelId, {
        promptIds,
        maxTokens: 32,
        sampling: GREEDY,
        stop: [],
        logprobs: null,
        lookahead: options.lookahead,
        ...spec,
      });
      return collectJob(job);
    },
    async close() {
      await engine.close(1000);
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** Tests run on the synthetic model (no files) unless they name one: the shipped default takes longer to build. */
export function withModel(flags: string[]): string[] {
  return flags.includes('--model') ? flags : ['--model', SYNTHETIC_MODEL, ...flags];
}
