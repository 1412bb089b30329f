import type { FastifyInstance } from 'fastify';
import type { CompletionRequest, CompletionResult } from '../control/engine-types.js';
import { badRequest } from './api-error.js';
import { checkAccepting, checkCommon, checkIds, checkModel, maxTokensFor, stopIdsFor } from './checks.js';
import { responseId, unixNow, type ServeContext } from './context.js';
import { extensionOf, generateWhole, streamCompletion, usageOf, type Chunker } from './generation.js';
import { completionBodySchema, type CompletionBody } from './schemas.js';

/** OpenAI's default max_tokens for /v1/completions. */
export const DEFAULT_MAX_TOKENS = 16;

/** POST /v1/completions: one prompt (token ids, or text with a tokenizer), one choice. */
export function registerCompletions(app: FastifyInstance, ctx: ServeContext): void {
  app.post<{ Body: CompletionBody }>(
    '/v1/completions',
    { schema: { body: completionBodySchema } },
    async (req, reply) => {
      const body = req.body;
      const { engine, codec } = ctx;
      checkAccepting(engine, ctx.draining());
      checkModel(body.model, engine);
      checkCommon(body);
      checkCompletionFields(body);
      const promptIds = promptIdsOf(body.prompt, ctx);
      const request: CompletionRequest = {
        id: responseId('cmpl'),
        promptIds,
        maxTokens: maxTokensFor(body.max_tokens, promptIds.length, engine, () => DEFAULT_MAX_TOKENS),
        stopIds: stopIdsFor(body, codec, engine),
      };
      const head = { id: request.id, object: 'text_completion', created: unixNow(), model: engine.modelName };
      if (!body.stream) {
        const r = await generateWhole(engine, request, ctx.log);
        const choice = { index: 0, text: codec.decode(r.tokenIds), logprobs: null, finish_reason: r.finishReason };
        return { ...head, choices: [{ ...choice, token_ids: r.tokenIds }], usage: usageOf(r), rackemu: extensionOf(r) };
      }
      const includeUsage = body.stream_options?.include_usage === true;
      const chunker = completionChunker(head, includeUsage);
      return streamCompletion(ctx, request, reply, { chunker, includeUsage });
    },
  );
}

function promptIdsOf(prompt: string | number[], ctx: ServeContext): number[] {
  if (typeof prompt === 'string') {
    if (ctx.codec.source === null) {
      throw badRequest(
        `prompt: text prompts need a tokenizer, and ${ctx.engine.modelName} was loaded without one (a model folder with tokenizer.json); send the prompt as an array of token ids`,
        'prompt',
        'tokenizer_unavailable',
      );
    }
    const ids = ctx.codec.encode(prompt, true);
    if (ids.length === 0) throw badRequest('prompt: the text encodes to no tokens', 'prompt');
    checkIds(ids, ctx.engine, 'prompt');
    return ids;
  }
  checkIds(prompt, ctx.engine, 'prompt');
  return prompt;
}

/** Fields of /v1/completions the emulator cannot honour. */
function checkCompletionFields(body: CompletionBody): void {
  const refuse = (param: string, why: string) => badRequest(`${param}: ${why}`, param, 'unsupported_parameter');
  if (body.echo) throw refuse('echo', 'not supported');
  if (body.logprobs != null) throw refuse('logprobs', 'not supported');
  if (body.best_of != null && body.best_of !== 1) throw refuse('best_of', 'must be 1 (decoding is greedy)');
  if (body.suffix) throw refuse('suffix', 'not supported');
}

function completionChunker(head: Record<string, unknown>, includeUsage: boolean): Chunker {
  const usage = includeUsage ? { usage: null } : {};
  const choice = (text: string, finish: CompletionResult['finishReason'] | null, ids: number[]) => ({
    index: 0,
    text,
    logprobs: null,
    finish_reason: finish,
    token_ids: ids,
  });
  return {
    token: (piece, tokenId) => ({ ...head, choices: [choice(piece, null, [tokenId])], ...usage }),
    finish: (r, tail) => ({ ...head, choices: [choice(tail, r.finishReason, [])], ...usage, rackemu: extensionOf(r) }),
    usage: (r) => ({ ...head, choices: [], usage: usageOf(r) }),
  };
}
