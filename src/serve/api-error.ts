import type { FastifyError } from 'fastify';
import { isRackemuError, type ErrorCode } from '../util/errors.js';

/**
 * Errors as OpenAI's API returns them, `{"error": {"message", "type", "param", "code"}}`, so that
 * OpenAI clients raise their usual exceptions (BadRequestError, NotFoundError, RateLimitError, ...).
 * `code` is always a stable string: an OpenAI-style word for errors found by the HTTP layer
 * (`model_not_found`, `context_length_exceeded`, ...), the registry code (src/util/errors.ts) for
 * errors the engine raised. docs/serving.md lists them all.
 */

export type ApiErrorType =
  'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'service_unavailable_error' | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly code: string,
    readonly param: string | null = null,
    /** Extra response headers (Retry-After, WWW-Authenticate). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 404 for a path no route serves. */
export function notFound(method: string, url: string): ApiError {
  return new ApiError(404, `Invalid URL (${method} ${url})`, 'invalid_request_error', 'not_found');
}

/** A 400 for a request field: `param` names it as the request spells it (`prompt[3]`, `messages[0].role`). */
export function badRequest(message: string, param: string | null, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', code, param);
}

/** HTTP status and type of each error the engine raises on purpose; other codes are server errors (500). */
const ENGINE_STATUS: Partial<
  Record<ErrorCode, { status: number; type: ApiErrorType; headers?: Record<string, string> }>
> = {
  RACKEMU_ERR_REQUEST: { status: 400, type: 'invalid_request_error' },
  RACKEMU_ERR_QUEUE_FULL: { status: 429, type: 'rate_limit_error', headers: { 'retry-after': '1' } },
  RACKEMU_ERR_DRAINING: { status: 503, type: 'service_unavailable_error' },
  // POST /admin/faults: a fault that is malformed, names no part of the system, or cannot be injected here
  RACKEMU_ERR_EXPERIMENT_KEY: { status: 400, type: 'invalid_request_error' },
  RACKEMU_ERR_FAULT_TARGET: { status: 400, type: 'invalid_request_error' },
  RACKEMU_ERR_FAULT: { status: 400, type: 'invalid_request_error' },
  // a fault the system could not recover from: requests in flight fail closed
  RACKEMU_ERR_NO_SPARE: { status: 503, type: 'service_unavailable_error' },
  RACKEMU_ERR_RECOVERY: { status: 503, type: 'service_unavailable_error' },
};

/** Any error thrown while serving a request, as the ApiError to answer with. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (isRackemuError(e)) {
    const m = ENGINE_STATUS[e.code];
    if (m) return new ApiError(m.status, e.message, m.type, e.code, null, m.headers);
    return new ApiError(500, `the emulator failed: ${e.message}`, 'server_error', e.code);
  }
  const f = e as Partial<FastifyError> | undefined;
  if (f && typeof f === 'object') {
    if (f.validation) return fromValidation(f as FastifyError, undefined);
    const fromFastify = fastifyError(f);
    if (fromFastify) return fromFastify;
  }
  return new ApiError(500, 'internal server error', 'server_error', 'internal_error');
}

/** Errors fastify raises before a handler runs (body parsing, content type, limits). */
function fastifyError(f: Partial<FastifyError>): ApiError | null {
  switch (f.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, f.message ?? 'request body is too large', 'invalid_request_error', 'request_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(
        415,
        'unsupported content type: send the request body as JSON with Content-Type: application/json',
        'invalid_request_error',
        'unsupported_media_type',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(
        400,
        'the request body is not valid JSON (or has a __proto__ or constructor.prototype key)',
        'invalid_request_error',
        'invalid_json',
      );
  }
  const status = f.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    // e.g. a body with __proto__ keys, or a Content-Length that does not match the body
    return new ApiError(status, f.message ?? 'bad request', 'invalid_request_error', 'bad_request');
  }
  return null;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** A JSON-schema failure (fastify's bundled ajv) as a 400 naming the field, what it must be and what came. */
export function fromValidation(e: FastifyError, body: unknown): ApiError {
  const first = (e.validation as unknown as AjvError[])[0];
  if (!first) return badRequest(e.message, null);
  let path = first.instancePath;
  if (first.keyword === 'required') path += `/${String(first.params.missingProperty)}`;
  const param = paramName(path);
  if (first.keyword === 'required') return badRequest(`${param} is required`, param, 'missing_required_parameter');
  if (param === null) return badRequest('the request body must be a JSON object', null, 'invalid_type');
  const got = JSON.stringify(at(body, path));
  const what = first.keyword === 'type' ? typeWords(first.params.type) : (first.message ?? 'is invalid');
  const code = first.keyword === 'type' ? 'invalid_type' : 'invalid_value';
  return badRequest(`${param}: ${what}${got === undefined ? '' : `, got ${clip(got)}`}`, param, code);
}

/** ajv's `type` param (`integer,null`, or a list) in words: "must be an integer (or null)". */
function typeWords(t: unknown): string {
  const types = (Array.isArray(t) ? t : String(t).split(',')).map(String);
  const named = types.filter((x) => x !== 'null').map((x) => (/^[aeiou]/.test(x) ? `an ${x}` : `a ${x}`));
  return `must be ${named.join(' or ')}${types.includes('null') ? ' (or null)' : ''}`;
}

/** `/messages/0/role` -> `messages[0].role`; the body itself -> null. */
function paramName(pointer: string): string | null {
  if (pointer === '') return null;
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc === '' ? p : `${acc}.${p}`), '');
}

function at(body: unknown, pointer: string): unknown {
  let v = body;
  for (const p of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return v;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
