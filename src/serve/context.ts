import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { CompletionEngine } from '../control/engine-types.js';
import type { TextCodec } from './text.js';

/** What every route of the server shares. */
export interface ServeContext {
  readonly engine: CompletionEngine;
  readonly codec: TextCodec;
  /** Request events (admitted, finished, failed) go here. */
  readonly log: Logger;
  /** True once a drain began (SIGTERM or POST /admin/drain): new generation requests get 503. */
  readonly draining: () => boolean;
}

/** A response id as OpenAI spells them: `cmpl-...`, `chatcmpl-...`. */
export function responseId(prefix: 'cmpl' | 'chatcmpl'): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

/** Unix seconds, the `created` field of responses. */
export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
