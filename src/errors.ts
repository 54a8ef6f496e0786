/**
 * Typed errors shared by every layer. Each carries the OpenAI error `type`/`code` it maps to and an HTTP status,
 * so the server maps them to responses in one place (server/errors.ts) and the CLI prints them plainly.
 */
export type ErrorType = 'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'authentication_error' | 'permission_error';

export class AppError extends Error {
  readonly status: number = 500;
  readonly type: ErrorType = 'server_error';
  readonly code: string | null = null;
  readonly param: string | null = null;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A model file or directory that is missing, truncated, corrupt or of an unsupported kind. */
export class ModelLoadError extends AppError {
  override readonly code = 'model_load_error';
}

export class UnsupportedArchitectureError extends ModelLoadError {}

export class InvalidRequestError extends AppError {
  override readonly status: number = 400;
  override readonly type = 'invalid_request_error' as const;
  override readonly param: string | null;
  override readonly code: string | null;
  constructor(message: string, param: string | null = null, code: string | null = null) {
    super(message);
    this.param = param;
    this.code = code;
  }
}

/**
 * A POST whose body is not declared JSON: refused before it is read. A web page can send a form or a bare Blob to
 * this server without a CORS preflight; it cannot send `application/json` without one.
 */
export class UnsupportedMediaTypeError extends InvalidRequestError {
  override readonly status = 415;
  constructor(message: string) {
    super(message, null, 'invalid_content_type');
  }
}

/** A `response_format` / `text.format` JSON schema that is not a valid schema. */
export class InvalidSchemaError extends InvalidRequestError {
  constructor(message: string, param: string) {
    super(message, param, 'invalid_json_schema');
  }
}

/** A valid JSON schema using a feature constrained decoding cannot enforce: refused by name, never ignored. */
export class UnsupportedSchemaError extends InvalidRequestError {
  constructor(readonly feature: string, param: string) {
    super(`JSON schema feature '${feature}' is not supported for structured outputs on this server`, param, 'unsupported_schema_feature');
  }
}

/** Prompt plus requested tokens do not fit the model's context window. */
export class ContextLengthError extends InvalidRequestError {
  constructor(message: string, param: string | null = 'messages') {
    super(message, param, 'context_length_exceeded');
  }
}

/** A job that alone needs more K/V memory than the server's whole budget for running jobs: it could never start. */
export class KvBudgetError extends InvalidRequestError {
  constructor(message: string) {
    super(message, 'max_tokens', 'kv_budget_exceeded');
  }
}

export class NotFoundError extends AppError {
  override readonly status = 404;
  override readonly type = 'not_found_error' as const;
  override readonly code: string | null;
  constructor(message: string, code: string | null = null) {
    super(message);
    this.code = code;
  }
}

/** A refusal the client should retry later: the server maps `retryAfterSeconds` to a Retry-After header. */
export abstract class RetryLaterError extends AppError {
  constructor(message: string, readonly retryAfterSeconds: number) {
    super(message);
  }
}

export class QueueFullError extends RetryLaterError {
  override readonly status = 429;
  override readonly type = 'rate_limit_error' as const;
  override readonly code = 'queue_full';
}

/** The job was cancelled: the client went away, a timeout fired, or the server is shutting down. */
export class AbortedError extends AppError {
  override readonly code = 'aborted';
}

/** No, or an unknown, API key (OpenAI answers 401 `invalid_api_key`). */
export class AuthenticationError extends AppError {
  override readonly status = 401;
  override readonly type = 'authentication_error' as const;
  override readonly code = 'invalid_api_key';
}

/** A valid key that may not do this (admin routes without the admin key). */
export class PermissionError extends AppError {
  override readonly status = 403;
  override readonly type = 'permission_error' as const;
  override readonly code = 'insufficient_permissions';
}

/** One tenant already has as many jobs in flight as it may: the others are not starved by it. */
export class TenantLimitError extends RetryLaterError {
  override readonly status = 429;
  override readonly type = 'rate_limit_error' as const;
  override readonly code = 'tenant_concurrency_limit';
}

/** The server is shutting down or not ready: the client should go elsewhere or come back. */
export class UnavailableError extends RetryLaterError {
  override readonly status = 503;
  override readonly code = 'service_unavailable';
}

/** A generation ran past `server.requestTimeoutMs`: its job is aborted and the request answered 504. */
export class RequestTimeoutError extends AppError {
  override readonly status = 504;
  override readonly code = 'request_timeout';
}

/** The engine's worker died or wedged: the job is lost, the engine is restarting; retrying shortly will work. */
export class EngineRestartingError extends RetryLaterError {
  override readonly status = 503;
  override readonly code = 'engine_restarting';
}

/** A request body part over a configured size (documents per post): 413 like an over-long body. */
export class PayloadTooLargeError extends AppError {
  override readonly status = 413;
  override readonly type = 'invalid_request_error' as const;
  override readonly code = 'request_too_large';
  override readonly param: string | null;
  constructor(message: string, param: string | null = null) {
    super(message);
    this.param = param;
  }
}

/** A tenant fed more document bytes per minute than it may. */
export class DocumentRateError extends RetryLaterError {
  override readonly status = 429;
  override readonly type = 'rate_limit_error' as const;
  override readonly code = 'documents_rate_limit';
}

/** An error as it crosses a thread boundary (structured clone keeps no class): the fields the client sees. */
export interface WireError {
  name: string;
  message: string;
  status?: number;
  type?: ErrorType;
  code?: string | null;
  param?: string | null;
}

export function toWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  if (!(e instanceof AppError)) return { name: e.name, message: e.message };
  return { name: e.name, message: e.message, status: e.status, type: e.type, code: e.code, param: e.param };
}

/** A typed error from the other side of a thread: same status, type, code and param as the one thrown there. */
class RemoteAppError extends AppError {
  override readonly status: number;
  override readonly type: ErrorType;
  override readonly code: string | null;
  override readonly param: string | null;
  constructor(wire: Required<WireError>) {
    super(wire.message);
    this.name = wire.name;
    this.status = wire.status;
    this.type = wire.type;
    this.code = wire.code;
    this.param = wire.param;
  }
}

export function fromWire(wire: WireError): Error {
  if (wire.status === undefined || wire.type === undefined) {
    const err = new Error(wire.message);
    err.name = wire.name;
    return err;
  }
  return new RemoteAppError({ code: null, param: null, ...wire } as Required<WireError>);
}
