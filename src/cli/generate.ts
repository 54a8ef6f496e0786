import { parseArgs } from 'node:util';
import { InvalidRequestError } from '../errors.js';
import { createEngine } from '../engine/index.js';
import { readJsonl } from '../engine/jsonl.js';
import type { DraftLayout, JobResult } from '../engine/types.js';
import { loadConfig } from '../config/load.js';
import { toEngineOptions } from '../config/engine-options.js';

interface PromptInput {
  prompt?: string;
  prompt_ids?: number[];
  messages?: { role: string; content: string }[];
}

/** `generate`: one JSON line per prompt with the generated ids, the text and the decode statistics. */
export async function generateCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'prompt-ids': { type: 'string' },
      chat: { type: 'string' },
      input: { type: 'string' },
      'max-tokens': { type: 'string', default: '128' },
      temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      'top-k': { type: 'string', default: '0' },
      seed: { type: 'string' },
      'context-length': { type: 'string' },
      lookahead: { type: 'string', default: 'hier' },
      'decoding-length': { type: 'string' },
      'branch-length': { type: 'string' },
      corpus: { type: 'string' },
      'cache-dir': { type: 'string' },
      threads: { type: 'string' },
      dtype: { type: 'string' },
      'execution-provider': { type: 'string' },
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const inputs = readPrompts(values);
  const mode = values.lookahead;
  if (!['off', 'hier', 'par', 'one'].includes(mode)) throw new InvalidRequestError(`--lookahead must be off, hier, par or one (got ${mode})`);
  // The server's resolution: flag over env (LOOKAHEAD_EXECUTION_PROVIDER, ...) over the config file over defaults.
  const passed = (['execution-provider', 'config'] as const).flatMap((f) => (values[f] !== undefined ? [`--${f}`, values[f]] : []));
  const defaults = toEngineOptions(loadConfig(passed, process.env));
  const engine = await createEngine(
    {
      ...defaults,
      model: values.model ?? null,
      contextLength: optInt(values['context-length'], '--context-length'),
      cacheDir: values['cache-dir'] ?? defaults.cacheDir,
      threads: optInt(values.threads, '--threads') ?? defaults.threads,
      dtype: (values.dtype as typeof defaults.dtype | undefined) ?? defaults.dtype,
      corpus: values.corpus ?? null,
      maxRunning: 1,
    },
    (m) => console.error(m),
  );
  try {
    const { id: modelId, executionProvider } = engine.models[0];
    const tok = engine.tokenizer(modelId);
    const lookahead = {
      enabled: mode !== 'off',
      layout: (mode === 'off' ? 'hier' : mode) as DraftLayout,
      decodingLength: optInt(values['decoding-length'], '--decoding-length') ?? defaults.lookahead.decodingLength,
      branchLength: optInt(values['branch-length'], '--branch-length') ?? defaults.lookahead.branchLength,
    };
    for (const input of inputs) {
      const promptIds = input.prompt_ids
        ? input.prompt_ids
        : input.messages
          ? tok.encode(tok.renderChat(input.messages), { addSpecialTokens: !tok.chatTemplateAddsBos })
          : tok.encode(input.prompt ?? '', { addSpecialTokens: true });
      const job = engine.submit(modelId, {
        promptIds,
        maxTokens: optInt(values['max-tokens'], '--max-tokens') ?? 128,
        sampling: {
          temperature: Number(values.temperature),
          topP: Number(values['top-p']),
          topK: Number(values['top-k']),
          repetitionPenalty: 1,
          seed: optInt(values.seed, '--seed') ?? null,
        },
        stop: [],
        logprobs: null,
        lookahead,
      });
      const ids: number[] = [];
      let text = '';
      for await (const chunk of job) {
        ids.push(...chunk.tokens);
        text += chunk.text;
      }
      console.log(JSON.stringify({ token_ids: ids, text, stats: statsJson(promptIds.length, executionProvider, await job.result) }));
    }
  } finally {
    await engine.close(0);
  }
  return 0;
}

function statsJson(promptTokens: number, executionProvider: string, r: JobResult) {
  const la = r.lookahead;
  return {
    execution_provider: executionProvider,
    prompt_tokens: promptTokens,
    generated_tokens: r.completionTokens,
    steps: la.steps,
    finish_reason: r.finishReason,
    prefill_seconds: la.prefillSeconds,
    decode_seconds: la.decodeSeconds,
    forward_seconds: la.forwardSeconds,
    draft_seconds: la.draftSeconds,
    tokens_per_step: la.tokensPerStep,
    draft_tokens: la.draftTokens,
    accepted_draft_tokens: la.acceptedTokens,
    accepted_by_position: la.acceptedByPosition,
    budgets: la.budgets,
  };
}

function readPrompts(values: { prompt?: string; 'prompt-ids'?: string; chat?: string; input?: string }): PromptInput[] {
  const given = [values.prompt, values['prompt-ids'], values.chat, values.input].filter((v) => v !== undefined).length;
  if (given !== 1) throw new InvalidRequestError('give exactly one of --prompt, --prompt-ids, --chat or --input');
  if (values.prompt !== undefined) return [{ prompt: values.prompt }];
  if (values.chat !== undefined) return [{ messages: [{ role: 'user', content: values.chat }] }];
  if (values['prompt-ids'] !== undefined) return [{ prompt_ids: parseIds(values['prompt-ids']) }];
  return readJsonl(
    values.input!,
    (value) => {
      const row = value as PromptInput | null;
      return row && typeof row === 'object' && (row.prompt || row.prompt_ids || row.messages) ? row : null;
    },
    '"prompt", "prompt_ids" or "messages"',
  );
}

function parseIds(text: string): number[] {
  const ids = text.split(',').map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InvalidRequestError(`--prompt-ids must be comma-separated non-negative integers (got ${text})`);
  }
  return ids;
}

function optInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidRequestError(`${flag} must be an integer (got ${value})`);
  return n;
}
