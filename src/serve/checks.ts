import type { CompletionEngine } from '../control/engine-types.js';
import { ApiError, badRequest } from './api-error.js';
import type { CommonBody } from './schemas.js';
import type { TextCodec } from './text.js';

/**
 * The checks of a generation request that depend on the served model (the schema checked types):
 * the server can take it, the model name, n, the fields the emulator cannot honour, token ids against
 * the vocabulary, and prompt + max_tokens against the Plan's context.
 */

/** 503 while the chips load or once draining began; the OpenAI client retries 503s itself. */
export function checkAccepting(engine: CompletionEngine, draining: boolean): void {
  if (draining) {
    throw new ApiError(
      503,
      'the server is draining: it finishes the requests it has and takes no new ones',
      'service_unavailable_error',
      'RACKEMU_ERR_DRAINING',
    );
  }
  if (!engine.ready) {
    throw new ApiError(
      503,
      'the deployment is starting: its chips are not all loaded yet (GET /ready says when)',
      'service_unavailable_error',
      'not_ready',
      null,
      { 'retry-after': '1' },
    );
  }
}

/** The `model` field names the served model; missing means the served model, as in vLLM. */
export function checkModel(model: string | undefined, engine: CompletionEngine): void {
  if (model === undefined || model === engine.modelName) return;
  throw new ApiError(
    404,
    `The model \`${model}\` does not exist: this server serves \`${engine.modelName}\` (GET /v1/models)`,
    'invalid_request_error',
    'model_not_found',
    'model',
  );
}

const unsupported = (param: string, why: string) => badRequest(`${param}: ${why}`, param, 'unsupported_parameter');

/** Fields both endpoints share that the emulator cannot honour: refused rather than silently ignored. */
export function checkCommon(body: CommonBody): void {
  if (body.n != null && body.n !== 1) {
    throw badRequest(`n: must be 1 (one choice per request), got ${body.n}`, 'n');
  }
  const stop = body.stop;
  if (stop != null && stop.length > 0) {
    throw unsupported('stop', 'stop strings are not supported; use stop_token_ids (token ids) instead');
  }
  for (const p of ['presence_penalty', 'frequency_penalty'] as const) {
    if (body[p] != null && body[p] !== 0) throw unsupported(p, 'penalties are not supported (decoding is greedy)');
  }
  if (body.logit_bias != null && Object.keys(body.logit_bias).length > 0) {
    throw unsupported('logit_bias', 'not supported (decoding is greedy)');
  }
}

/** Every id an integer in [0, vocab) (the schema checked integer and >= 0; this is the upper bound). */
export function checkIds(ids: readonly number[], engine: CompletionEngine, param: string): void {
  const i = ids.findIndex((id) => !Number.isSafeInteger(id) || id < 0 || id >= engine.vocab);
  if (i >= 0) {
    throw badRequest(
      `${param}[${i}]: token id ${ids[i]} is outside the vocabulary [0, ${engine.vocab}) of ${engine.modelName}`,
      `${param}[${i}]`,
    );
  }
}

/**
 * New tokens to generate: `requested`, or `fallback(room)` when the request gave none; prompt + new
 * tokens must fit the context (the engine's rule, and vLLM's max_model_len).
 */
export function maxTokensFor(
  requested: number | null | undefined,
  promptTokens: number,
  engine: CompletionEngine,
  fallback: (room: number) => number,
  param = 'max_tokens',
): number {
  const room = engine.context - promptTokens;
  const n = requested ?? fallback(room);
  if (promptTokens + n > engine.context || room < 1) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${engine.context} tokens. However, you requested ${promptTokens + n} tokens (${promptTokens} in your prompt; ${n} for the completion). Please reduce your prompt; or completion length.`,
      'invalid_request_error',
      'context_length_exceeded',
      room < 1 ? 'prompt' : param,
    );
  }
  return n;
}

/** stop_token_ids, plus the model's EOS ids (tokenizer folders) unless ignore_eos. */
export function stopIdsFor(body: CommonBody, text: TextCodec, engine: CompletionEngine): number[] | undefined {
  const own = body.stop_token_ids ?? [];
  checkIds(own, engine, 'stop_token_ids');
  const eos = body.ignore_eos ? [] : text.eosIds.filter((id) => id < engine.vocab);
  const ids = [...new Set([...own, ...eos])];
  return ids.length > 0 ? ids : undefined;
}
