import type { FastifyInstance } from 'fastify';
import type { CompletionRequest, CompletionResult } from '../control/engine-types.js';
import { badRequest } from './api-error.js';
import { checkAccepting, checkCommon, checkIds, checkModel, maxTokensFor, stopIdsFor } from './checks.js';
import { responseId, unixNow, type ServeContext } from './context.js';
import { extensionOf, generateWhole, streamCompletion, usageOf, type Chunker } from './generation.js';
import { chatBodySchema, type ChatBody, type ChatMessage } from './schemas.js';

/**
 * POST /v1/chat/completions: only with a tokenizer that has a chat template (a model folder's
 * tokenizer_config.json `chat_template`, or chat_template.jinja); otherwise a 400 that says so. The
 * messages are rendered with the template (ending with the assistant's turn) and encoded without
 * added special tokens, as Hugging Face's apply_chat_template and vLLM do. A missing max_tokens means
 * the rest of the context, as in OpenAI's and vLLM's chat API.
 */
export function registerChat(app: FastifyInstance, ctx: ServeContext): void {
  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: { body: chatBodySchema } }, async (req, reply) => {
    const body = req.body;
    const { engine, codec } = ctx;
    const chat = codec.chat;
    if (chat === null) {
      const why =
        codec.source === null
          ? 'was loaded without a tokenizer'
          : `has a tokenizer (${codec.source}) but no chat template`;
      throw badRequest(
        `chat completions need a chat template, and ${engine.modelName} ${why}; use POST /v1/completions with the prompt as token ids`,
        null,
        'chat_template_unavailable',
      );
    }
    checkAccepting(engine, ctx.draining());
    checkModel(body.model, engine);
    checkCommon(body);
    if (body.logprobs) throw badRequest('logprobs: not supported', 'logprobs', 'unsupported_parameter');
    if (body.tools && body.tools.length > 0) throw badRequest('tools: not supported', 'tools', 'unsupported_parameter');
    const promptIds = codec.encode(render(chat, body.messages), false);
    checkIds(promptIds, engine, 'messages');
    const requested = body.max_completion_tokens ?? body.max_tokens;
    const param = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    const request: CompletionRequest = {
      id: responseId('chatcmpl'),
      promptIds,
      maxTokens: maxTokensFor(requested, promptIds.length, engine, (room) => room, param),
      stopIds: stopIdsFor(body, codec, engine),
    };
    const head = { id: request.id, object: 'chat.completion', created: unixNow(), model: engine.modelName };
    if (!body.stream) {
      const r = await generateWhole(engine, request, ctx.log);
      const message = { role: 'assistant', content: codec.decode(r.tokenIds) };
      const choice = { index: 0, message, logprobs: null, finish_reason: r.finishReason, token_ids: r.tokenIds };
      return { ...head, choices: [choice], usage: usageOf(r), rackemu: extensionOf(r) };
    }
    const includeUsage = body.stream_options?.include_usage === true;
    const chunker = chatChunker({ ...head, object: 'chat.completion.chunk' }, includeUsage);
    return streamCompletion(ctx, request, reply, { chunker, includeUsage });
  });
}

function render(chat: NonNullable<ServeContext['codec']['chat']>, messages: ChatMessage[]): string {
  const plain = messages.map((m, i) => {
    let content = '';
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      const part = m.content.findIndex((p) => p.type !== 'text' || typeof p.text !== 'string');
      if (part >= 0) {
        const param = `messages[${i}].content[${part}]`;
        throw badRequest(`${param}: only text parts ({"type": "text", "text": ...}) are supported`, param);
      }
      content = m.content.map((p) => p.text).join('');
    }
    return { role: m.role, content };
  });
  try {
    return chat(plain);
  } catch (e) {
    // templates raise on conversations they do not take (e.g. roles that do not alternate)
    throw badRequest(`messages: the chat template refused them: ${(e as Error).message}`, 'messages');
  }
}

function chatChunker(head: Record<string, unknown>, includeUsage: boolean): Chunker {
  const usage = includeUsage ? { usage: null } : {};
  let first = true;
  const choice = (content: string, finish: CompletionResult['finishReason'] | null, ids: number[]) => {
    const delta = first ? { role: 'assistant', content } : { content };
    first = false;
    return { index: 0, delta, logprobs: null, finish_reason: finish, token_ids: ids };
  };
  return {
    token: (piece, tokenId) => ({ ...head, choices: [choice(piece, null, [tokenId])], ...usage }),
    finish: (r, tail) => ({ ...head, choices: [choice(tail, r.finishReason, [])], ...usage, rackemu: extensionOf(r) }),
    usage: (r) => ({ ...head, choices: [], usage: usageOf(r) }),
  };
}
