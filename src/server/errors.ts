import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { AbortedError, AppError, RequestTimeoutError, RetryLaterError, type ErrorType } from '../errors.js';

/** OpenAI's error object; the SDKs read type/param/code from it and pick the error class from the status. */
export interface OpenAIErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export interface MappedError {
  status: number;
  body: OpenAIErrorBody;
  headers: Record<string, string>;
  /** True for failures that are our fault: these are logged with their stack, never sent. */
  internal: boolean;
}

export function errorBody(message: string, type: ErrorType, param: string | null = null, code: string | null = null): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}

/** The one place any thrown value becomes an HTTP error. */
export function mapError(err: unknown, requestId: string): MappedError {
  if (err instanceof ZodError) {
    const issue = err.issues[0];
    const param = formatPath(issue.path);
    return {
      status: 400,
      body: errorBody(param ? `Invalid value for '${param}': ${issue.message}` : issue.message, 'invalid_request_error', param || null),
      headers: {},
      internal: false,
    };
  }
  if (err instanceof AppError && (err.status < 500 || isExpected(err))) {
    const headers: Record<string, string> = err instanceof RetryLaterError ? { 'Retry-After': String(err.retryAfterSeconds) } : {};
    return { status: err.status, body: errorBody(err.message, err.type, err.param, err.code), headers, internal: false };
  }
  if (err instanceof HTTPException && err.status < 500) {
    return { status: err.status, body: errorBody(err.message || 'Bad request', 'invalid_request_error'), headers: {}, internal: false };
  }
  // Server-side failures: a request id to quote, nothing about our internals.
  const code = err instanceof AppError ? err.code : null;
  const status = err instanceof AppError ? err.status : 500;
  const detail = err instanceof AppError ? `${err.message}. ` : '';
  return {
    status,
    body: errorBody(`${detail}The server had an error while processing your request (request id ${requestId}).`, 'server_error', null, code),
    headers: {},
    internal: true,
  };
}

/** Server-side outcomes that are not failures of ours: said plainly to the client, not logged with a stack. */
function isExpected(err: AppError): boolean {
  return err instanceof RetryLaterError || err instanceof RequestTimeoutError || err instanceof AbortedError || err.status === 504;
}

/** `messages[0].content` rather than `messages.0.content`: the form OpenAI's messages use. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out;
}
