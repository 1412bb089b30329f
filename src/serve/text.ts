import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { BUILTIN_MODELS } from '../model/builtin.js';
import { UsageError } from '../util/errors.js';

/**
 * Text in and out of the served model. With a Hugging Face model folder that has `tokenizer.json`,
 * prompts may be text and outputs are detokenised, with Hugging Face's own pure-JS tokenizer
 * (@huggingface/tokenizers: no dependencies, reads tokenizer.json offline, the tokenizer of
 * transformers.js) and chat templates (tokenizer_config.json's `chat_template`, or
 * `chat_template.jinja`) rendered by @huggingface/jinja, HF's Jinja subset for chat templates.
 * Without a tokenizer (the built-in models) prompts are token ids and the text of a completion is
 * its ids joined by spaces.
 */

export interface TextCodec {
  /** Where the tokenizer came from (for logs), or null without one. */
  readonly source: string | null;
  encode(text: string, addSpecialTokens: boolean): number[];
  /** Text of generated ids, special tokens skipped (as vLLM's default skip_special_tokens). */
  decode(ids: readonly number[]): string;
  /** The model's end-of-sequence ids (generation stops after one unless ignore_eos). */
  readonly eosIds: readonly number[];
  /** Renders chat messages to the prompt text, ending with the assistant's turn; null: no template. */
  readonly chat: ((messages: readonly { role: string; content: string }[]) => string) | null;
}

/** No tokenizer: ids in, ids joined by spaces out. */
export const ID_TEXT: TextCodec = {
  source: null,
  encode: () => {
    throw new Error('no tokenizer');
  },
  decode: (ids) => ids.join(' '),
  eosIds: [],
  chat: null,
};

type Json = Record<string, unknown>;

function readJson(file: string): Json {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Json;
  } catch (e) {
    throw new UsageError('RACKEMU_ERR_SERVE_OPTION', `${file} cannot be read as JSON: ${(e as Error).message}`, {
      details: { file },
    });
  }
}

/** A special token in tokenizer_config.json: a string or an AddedToken object `{content: ...}`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function chatTemplate(folder: string, config: Json): string | null {
  const jinja = join(folder, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    // named templates: [{name: 'default', template: '...'}, {name: 'tool_use', ...}]
    const named = t as { name?: string; template?: string }[];
    return (named.find((x) => x.name === 'default') ?? named[0])?.template ?? null;
  }
  return null;
}

/**
 * The codec of a model argument: a Hugging Face folder's tokenizer.json (with its tokenizer_config.json
 * if present), or ID_TEXT for built-in models and folders without one.
 */
export function loadTextCodec(modelSpec: string): TextCodec {
  if (Object.prototype.hasOwnProperty.call(BUILTIN_MODELS, modelSpec)) return ID_TEXT;
  const file = join(modelSpec, 'tokenizer.json');
  if (!existsSync(file)) return ID_TEXT;
  const configFile = join(modelSpec, 'tokenizer_config.json');
  const config = existsSync(configFile) ? readJson(configFile) : {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(readJson(file), config);
  } catch (e) {
    throw new UsageError(
      'RACKEMU_ERR_SERVE_OPTION',
      `${file} is not a tokenizer this server can read: ${(e as Error).message}`,
      {
        details: { file },
      },
    );
  }
  const modelConfigFile = join(modelSpec, 'config.json');
  const modelEos = existsSync(modelConfigFile) ? readJson(modelConfigFile).eos_token_id : undefined;
  const eosIds = new Set<number>([modelEos].flat().filter((x): x is number => Number.isInteger(x)));
  const eosText = tokenText(config.eos_token);
  const eosId = eosText === undefined ? undefined : tokenizer.token_to_id(eosText);
  if (eosId !== undefined) eosIds.add(eosId);
  const template = chatTemplate(modelSpec, config);
  const compiled = template === null ? null : new Template(template);
  return {
    source: file,
    encode: (text, addSpecialTokens) => tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids,
    decode: (ids) => tokenizer.decode([...ids], { skip_special_tokens: true }),
    eosIds: [...eosIds],
    chat: compiled
      ? (messages) =>
          compiled.render({
            messages,
            add_generation_prompt: true,
            bos_token: tokenText(config.bos_token) ?? '',
            eos_token: eosText ?? '',
          })
      : null,
  };
}

/**
 * Streams the text of generated ids piece by piece such that the pieces join to decode(all ids): each
 * piece is what the decoded text grew by, held back while it ends in an incomplete character (a
 * byte-level token can be half of a UTF-8 sequence).
 */
export class TextStream {
  private readonly ids: number[] = [];
  private emitted = '';

  constructor(private readonly codec: TextCodec) {}

  push(id: number): string {
    this.ids.push(id);
    const full = this.codec.decode(this.ids);
    if (full.endsWith('\uFFFD')) return '';
    return this.take(full);
  }

  /** Whatever is still held back, at the end of the stream. */
  flush(): string {
    return this.take(this.codec.decode(this.ids));
  }

  private take(full: string): string {
    // A decoder that rewrites earlier text (rare clean-up rules) cannot take back what was sent: the
    // pieces then differ from the final text in that spot only.
    const piece = full.slice(this.emitted.length);
    this.emitted = full;
    return piece;
  }
}
