/**
 * JSON schemas of the request bodies, checked by fastify's bundled ajv before a handler runs (types
 * and simple ranges; app.ts turns ajv's coercion off, so "16" is not a max_tokens). What depends on
 * the served model (vocabulary, context, model name) is checked by the handlers. Fields OpenAI
 * defines that the emulator does not use are type-checked and ignored or refused (docs/serving.md);
 * unknown fields are ignored, as OpenAI and vLLM do.
 */

const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: [type, 'null'], ...extra });

/** Sampling and streaming fields shared by both endpoints. */
const common = {
  model: { type: 'string' },
  max_tokens: nullable('integer', { minimum: 1 }),
  stream: nullable('boolean'),
  stream_options: nullable('object', {
    properties: { include_usage: nullable('boolean'), continuous_usage_stats: nullable('boolean') },
  }),
  n: nullable('integer', { minimum: 1 }),
  temperature: nullable('number', { minimum: 0, maximum: 2 }),
  top_p: nullable('number', { exclusiveMinimum: 0, maximum: 1 }),
  top_k: nullable('integer'),
  seed: nullable('integer'),
  user: nullable('string'),
  stop: { type: ['string', 'array', 'null'], items: { type: 'string' } },
  stop_token_ids: nullable('array', { items: { type: 'integer', minimum: 0 } }),
  ignore_eos: nullable('boolean'),
  presence_penalty: nullable('number', { minimum: -2, maximum: 2 }),
  frequency_penalty: nullable('number', { minimum: -2, maximum: 2 }),
  logit_bias: nullable('object'),
} as const;

export const completionBodySchema = {
  type: 'object',
  required: ['prompt'],
  properties: {
    ...common,
    // one prompt: text, or token ids; batched prompts (arrays of strings or of arrays) fail `items`
    prompt: { type: ['string', 'array'], minLength: 1, minItems: 1, items: { type: 'integer', minimum: 0 } },
    echo: nullable('boolean'),
    logprobs: nullable('integer'),
    best_of: nullable('integer'),
    suffix: nullable('string'),
  },
} as const;

const contentPart = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string' }, text: { type: 'string' } },
} as const;

export const chatBodySchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    ...common,
    max_completion_tokens: nullable('integer', { minimum: 1 }),
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string' },
          content: { type: ['string', 'array', 'null'], items: contentPart },
          name: { type: 'string' },
        },
      },
    },
    logprobs: nullable('boolean'),
    tools: nullable('array'),
  },
} as const;

export interface CommonBody {
  model?: string;
  max_tokens?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null; continuous_usage_stats?: boolean | null } | null;
  n?: number | null;
  temperature?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  ignore_eos?: boolean | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, unknown> | null;
}

export interface CompletionBody extends CommonBody {
  prompt: string | number[];
  echo?: boolean | null;
  logprobs?: number | null;
  best_of?: number | null;
  suffix?: string | null;
}

export interface ChatMessage {
  role: string;
  content?: string | { type: string; text?: string }[] | null;
  name?: string;
}

export interface ChatBody extends CommonBody {
  max_completion_tokens?: number | null;
  messages: ChatMessage[];
  logprobs?: boolean | null;
  tools?: unknown[] | null;
}
