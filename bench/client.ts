import { request, type Dispatcher } from 'undici';
import type { LookaheadBlock, RequestSample } from './metrics.js';
import { SseParser } from './sse.js';

/** Where requests go. `apiBase` ends in the version prefix (…/v1); `origin` serves /health and /metrics. */
export interface Target {
  apiBase: string;
  origin: string;
  apiKey: string | null;
  dispatcher: Dispatcher;
  /** Hard ceiling on one request, headers to last byte. */
  requestTimeoutMs: number;
}

const ERROR_BODY_LIMIT = 64 * 1024;

/** A failed, empty sample starting now: what a request records before anything arrives. */
export function emptySample(errorType: string | null = null, errorMessage: string | null = null): RequestSample {
  return {
    key: null,
    ok: false,
    errorType,
    errorMessage,
    startMs: performance.now(),
    ttftMs: null,
    e2eMs: 0,
    interChunkMs: [],
    promptTokens: null,
    completionTokens: 0,
    text: '',
    finishReason: null,
    lookahead: null,
    acceptedPredictionTokens: null,
    rejectedPredictionTokens: null,
  };
}

/** Sends one streaming chat completion and measures it. Never throws for request failures: they become samples. */
export async function streamChat(
  target: Target,
  body: Record<string, unknown>,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<RequestSample> {
  const sample = emptySample();
  const timeout = AbortSignal.timeout(target.requestTimeoutMs);
  const combined = AbortSignal.any([signal, timeout]);
  let lastChunkAt = 0;
  let chunksWithContent = 0;
  let usageTokens: number | null = null;
  let sawDone = false;
  try {
    const res = await request(`${target.apiBase}/chat/completions`, {
      method: 'POST',
      dispatcher: target.dispatcher,
      signal: combined,
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    });
    if (res.statusCode !== 200) {
      const text = await readLimited(res.body);
      return fail(sample, `http_${res.statusCode}`, `HTTP ${res.statusCode}: ${errorMessageOf(text)}`);
    }
    const parser = new SseParser();
    const handle = (payload: string): string | null => {
      if (payload === '[DONE]') {
        sawDone = true;
        return null;
      }
      let chunk: StreamChunk;
      try {
        chunk = JSON.parse(payload) as StreamChunk;
      } catch {
        return `bad_chunk:a stream event is not JSON: ${payload.slice(0, 120)}`;
      }
      if (chunk.error) return `stream_error:${chunk.error.message ?? JSON.stringify(chunk.error)}`;
      const choice = chunk.choices?.[0];
      const content = choice?.delta?.content;
      if (typeof content === 'string' && content.length > 0) {
        const now = performance.now();
        if (sample.ttftMs === null) sample.ttftMs = now - sample.startMs;
        else sample.interChunkMs.push(now - lastChunkAt);
        lastChunkAt = now;
        chunksWithContent++;
        sample.text += content;
      }
      if (choice?.finish_reason) sample.finishReason = choice.finish_reason;
      if (chunk.usage) {
        usageTokens = chunk.usage.completion_tokens ?? null;
        sample.promptTokens = chunk.usage.prompt_tokens ?? null;
        const details = chunk.usage.completion_tokens_details;
        sample.acceptedPredictionTokens = details?.accepted_prediction_tokens ?? null;
        sample.rejectedPredictionTokens = details?.rejected_prediction_tokens ?? null;
      }
      const block = chunk.lookahead ?? chunk.usage?.lookahead;
      if (block && typeof block.steps === 'number') sample.lookahead = block;
      return null;
    };
    for await (const bytes of res.body) {
      for (const payload of parser.push(bytes as Uint8Array)) {
        const problem = handle(payload);
        if (problem) {
          res.body.destroy();
          const cut = problem.indexOf(':');
          return fail(sample, problem.slice(0, cut), problem.slice(cut + 1));
        }
      }
    }
    for (const payload of parser.end()) {
      const problem = handle(payload);
      if (problem) return fail(sample, problem.slice(0, problem.indexOf(':')), problem.slice(problem.indexOf(':') + 1));
    }
    if (!sawDone) return fail(sample, 'truncated', 'the stream ended without data: [DONE]');
    sample.ok = true;
    sample.completionTokens = usageTokens ?? chunksWithContent;
    sample.e2eMs = performance.now() - sample.startMs;
    return sample;
  } catch (err) {
    if (timeout.aborted) return fail(sample, 'timeout', `no complete response within ${target.requestTimeoutMs} ms`);
    if (signal.aborted) return fail(sample, 'aborted', 'the run was stopped');
    return fail(sample, classify(err), describe(err));
  }
}

interface StreamChunk {
  error?: { message?: string };
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    completion_tokens_details?: { accepted_prediction_tokens?: number; rejected_prediction_tokens?: number };
    lookahead?: LookaheadBlock;
  } | null;
  lookahead?: LookaheadBlock;
}

function fail(sample: RequestSample, type: string, message: string): RequestSample {
  sample.ok = false;
  sample.errorType = type;
  sample.errorMessage = message;
  sample.e2eMs = performance.now() - sample.startMs;
  return sample;
}

/** Error classes by undici/Node code, so a report can say "12 connect, 3 timeout" rather than 15 stack traces. */
export function classify(err: unknown): string {
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'timeout';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return 'connection_reset';
    default:
      return 'client_error';
  }
}

export function describe(err: unknown): string {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  const code = e.code ?? e.cause?.code;
  const msg = e.cause?.message && e.cause.message !== e.message ? `${e.message}: ${e.cause.message}` : e.message;
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

async function readLimited(body: AsyncIterable<unknown> & { destroy(): void }): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    parts.push(buf);
    size += buf.length;
    if (size >= ERROR_BODY_LIMIT) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).toString('utf8');
}

function errorMessageOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string };
    if (typeof parsed.error === 'string') return parsed.error;
    if (parsed.error?.message) return parsed.error.message;
  } catch {
    // not JSON: show the start of the body as is
  }
  return text.slice(0, 200) || '(empty body)';
}
