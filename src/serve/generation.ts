import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { CompletionEngine, CompletionRequest, CompletionResult, TokenEvent } from '../control/engine-types.js';
import { toApiError } from './api-error.js';
import { SseWriter } from './sse.js';
import { TextStream, type TextCodec } from './text.js';

/**
 * One request through the engine, for both endpoints: submitted, answered whole or streamed token by
 * token, and logged as events (admitted, finished or failed; never per token).
 */

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The `rackemu` extension object of a response: the emulated hardware's timings, and this machine's. */
export interface RackemuExtension {
  fidelity: 'numeric' | 'timing';
  virtual: { ttft_ms: number; tpot_ms: number; e2e_ms: number; queue_ms: number; arrival_ms: number };
  wall: { ttft_ms: number; e2e_ms: number };
}

export function usageOf(r: CompletionResult): Usage {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.tokenIds.length,
    total_tokens: r.promptTokens + r.tokenIds.length,
  };
}

export function extensionOf(r: CompletionResult): RackemuExtension {
  const v = r.virtual;
  return {
    fidelity: r.fidelity,
    virtual: { ttft_ms: v.ttftMs, tpot_ms: v.tpotMs, e2e_ms: v.e2eMs, queue_ms: v.queueMs, arrival_ms: v.arrivalMs },
    wall: { ttft_ms: r.wall.ttftMs, e2e_ms: r.wall.e2eMs },
  };
}

function logAdmitted(log: Logger, request: CompletionRequest, stream: boolean): void {
  log.info(
    { id: request.id, prompt_tokens: request.promptIds.length, max_tokens: request.maxTokens, stream },
    'request admitted',
  );
}

function logFinished(log: Logger, r: CompletionResult): void {
  log.info(
    { id: r.id, completion_tokens: r.tokenIds.length, finish_reason: r.finishReason, ...extensionOf(r) },
    'request finished',
  );
}

function logFailed(log: Logger, id: string, e: unknown): void {
  const a = toApiError(e);
  const level = a.status >= 500 && a.code !== 'RACKEMU_ERR_DRAINING' ? 'error' : 'info';
  log[level]({ id, status: a.status, code: a.code, err: a.status >= 500 ? e : undefined }, 'request failed');
}

/** The whole completion at once. */
export async function generateWhole(
  engine: CompletionEngine,
  request: CompletionRequest,
  log: Logger,
): Promise<CompletionResult> {
  logAdmitted(log, request, false);
  try {
    const r = await engine.submit(request);
    logFinished(log, r);
    return r;
  } catch (e) {
    logFailed(log, request.id, e);
    throw e;
  }
}

/** Token events of one request as an async sequence whose return value is the result. */
class TokenFeed {
  private readonly buffered: TokenEvent[] = [];
  private wake: (() => void) | null = null;
  private end: { result: CompletionResult } | { error: unknown } | null = null;

  constructor(engine: CompletionEngine, request: CompletionRequest) {
    const signal = () => {
      this.wake?.();
      this.wake = null;
    };
    engine
      .submit(request, (e) => {
        this.buffered.push(e);
        signal();
      })
      .then(
        (result) => (this.end = { result }),
        (error: unknown) => (this.end = { error }),
      )
      .finally(signal);
  }

  async *events(): AsyncGenerator<TokenEvent, CompletionResult> {
    for (;;) {
      const e = this.buffered.shift();
      if (e) {
        yield e;
        continue;
      }
      if (this.end) {
        if ('error' in this.end) throw this.end.error;
        return this.end.result;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** What a streaming endpoint sends: a chunk per token, one with the finish reason, one with usage. */
export interface Chunker {
  token(piece: string, tokenId: number): unknown;
  finish(result: CompletionResult, tail: string): unknown;
  usage(result: CompletionResult): unknown;
}

export type OpenedStream = AsyncGenerator<TokenEvent, CompletionResult>;

/**
 * Submits a streaming request and waits for its first token (or its end), so that a request the
 * engine refuses (queue full, draining, ...) still gets its HTTP status: rejects in that case.
 */
async function openStream(
  engine: CompletionEngine,
  request: CompletionRequest,
  log: Logger,
): Promise<{ first: IteratorResult<TokenEvent, CompletionResult>; rest: OpenedStream }> {
  logAdmitted(log, request, true);
  const rest = new TokenFeed(engine, request).events();
  try {
    return { first: await rest.next(), rest };
  } catch (e) {
    logFailed(log, request.id, e);
    throw e;
  }
}

/**
 * Sends the events of an opened stream: a chunk per token, then the finish chunk, the usage chunk
 * if asked for, and [DONE]. A failure after the first token cannot change the status any more: it is
 * sent as an `{"error": ...}` event (as vLLM does) before [DONE]. A client that goes away cancels its
 * request (CompletionEngine.cancel), which frees its batch slot.
 */
async function pumpStream(
  opened: { first: IteratorResult<TokenEvent, CompletionResult>; rest: OpenedStream },
  sse: SseWriter,
  io: {
    chunker: Chunker;
    codec: TextCodec;
    includeUsage: boolean;
    log: Logger;
    id: string;
    engine: CompletionEngine;
  },
): Promise<void> {
  const text = new TextStream(io.codec);
  let ended = false;
  sse.onClose(() => {
    if (ended) return;
    io.log.info({ id: io.id }, 'client disconnected: request cancelled');
    io.engine.cancel(io.id);
  });
  try {
    let next = opened.first;
    while (!next.done) {
      sse.data(io.chunker.token(text.push(next.value.tokenId), next.value.tokenId));
      next = await opened.rest.next();
    }
    const result = next.value;
    logFinished(io.log, result);
    sse.data(io.chunker.finish(result, text.flush()));
    if (io.includeUsage) sse.data(io.chunker.usage(result));
  } catch (e) {
    logFailed(io.log, io.id, e);
    sse.data(toApiError(e).body());
  }
  ended = true;
  sse.done();
}

/**
 * A streamed completion, for both endpoints: opened first (so that a request the engine refuses still
 * gets its HTTP status), then its events sent on `reply` as server-sent events.
 */
export async function streamCompletion(
  ctx: { readonly engine: CompletionEngine; readonly codec: TextCodec; readonly log: Logger },
  request: CompletionRequest,
  reply: FastifyReply,
  stream: { readonly chunker: Chunker; readonly includeUsage: boolean },
): Promise<FastifyReply> {
  const opened = await openStream(ctx.engine, request, ctx.log);
  void pumpStream(opened, new SseWriter(reply), {
    ...stream,
    codec: ctx.codec,
    log: ctx.log,
    id: request.id,
    engine: ctx.engine,
  });
  return reply;
}
