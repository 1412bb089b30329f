import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { CompletionEngine } from '../control/engine-types.js';
import { logger } from '../util/log.js';
import { registerAdmin, type FaultControl } from './admin.js';
import { ApiError, fromValidation, notFound, toApiError } from './api-error.js';
import { registerChat } from './chat.js';
import { registerCompletions } from './completions.js';
import type { ServeContext } from './context.js';
import { registerInfo, type MetricsSource } from './info.js';
import { ID_TEXT, type TextCodec } from './text.js';
import { registerView, type RackView } from '../view/index.js';
import { closeServer } from './close.js';

/**
 * The HTTP server of `rackemu serve`: an OpenAI-compatible API over a CompletionEngine.
 *
 * Why fastify (v5): the parts of an HTTP API that are easy to get subtly wrong are its defaults, tested
 * by a large user base: a body limit enforced while the body streams in (413 before it is all read),
 * content-type dispatch (anything but JSON gets 415), JSON parsing that refuses prototype poisoning,
 * JSON-schema validation of bodies with its bundled ajv (types and ranges, before a handler runs),
 * hooks to refuse requests early (draining, admin auth) and encapsulated plugins (admin routes exist
 * only when configured), and a close() that stops listening and ends idle keep-alive connections.
 * It logs through pino, which rackemu already uses. Node's bare http module would need all of that
 * written here; express 5 has no schema validation or encapsulation of its own.
 */

/** Largest request body: 1 MiB, about 150 000 token ids in JSON; larger bodies get 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface ServerOptions {
  readonly engine: CompletionEngine;
  /** The model's tokenizer (text prompts, chat); ID_TEXT (token ids only) without one. */
  readonly codec?: TextCodec;
  readonly metrics: MetricsSource;
  /** Bearer token of the admin routes; without one they are not registered (404). */
  readonly adminToken?: string;
  readonly log?: Logger;
  /**
   * Counts a refused generation request (for rackemu_requests_rejected_total): queue full (429),
   * draining (503), or invalid (any other 4xx, whether the HTTP layer or the engine found it).
   */
  readonly rejected?: (reason: 'queue_full' | 'invalid' | 'draining') => void;
  /** Fault injection into the live deployment (admin routes); null until the chips are loaded. */
  readonly faults?: () => FaultControl | null;
  /** The rack view served at / (src/view/); without one, / is 404. */
  readonly view?: RackView;
}

export interface RackemuServer {
  readonly app: FastifyInstance;
  readonly draining: boolean;
  /** Starts listening; resolves to the URL (port 0 picks a free port). */
  listen(host: string, port: number): Promise<string>;
  /**
   * Stops admitting (generation requests get 503, /ready 503), waits for the engine to finish every
   * request in flight, then closes the server. Idempotent: later calls return the same promise.
   */
  drain(reason: string): Promise<void>;
  /** Settles when a drain has finished (or failed). */
  readonly closed: Promise<void>;
  /** Stops listening and closes every connection (after a grace period for responses being written). */
  close(): Promise<void>;
}

export function createServer(opts: ServerOptions): RackemuServer {
  const log = opts.log ?? logger().child({ component: 'serve' });
  const app = Fastify({
    // Fastify's own lines (per request, "Server listening") only when debugging: the routes log one
    // line per request event themselves (generation.ts), and listen() logs the URL.
    loggerInstance: logger().child({ component: 'http' }, { level: log.isLevelEnabled('debug') ? log.level : 'warn' }),
    bodyLimit: BODY_LIMIT_BYTES,
    onProtoPoisoning: 'error',
    // ajv as fastify ships it, but strict about types: no coercion ("16" is not an integer), nothing removed
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allowUnionTypes: true } },
  }) as unknown as FastifyInstance;
  app.removeContentTypeParser('text/plain'); // JSON only: text/plain bodies get 415
  let draining = false;
  let drainPromise: Promise<void> | null = null;
  let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  const closed = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  closed.catch(() => {}); // a caller that never awaits it must not see an unhandled rejection
  const ctx: ServeContext = { engine: opts.engine, codec: opts.codec ?? ID_TEXT, log, draining: () => draining };

  const drain = (reason: string): Promise<void> => {
    drainPromise ??= (async () => {
      draining = true;
      const { running, waiting } = opts.engine;
      log.info({ reason, running, waiting }, 'drain started');
      try {
        await opts.engine.drain();
        await closeServer(app);
        log.info({ reason }, 'drain finished');
        settle!.resolve();
      } catch (e) {
        log.error({ err: e }, 'drain failed');
        settle!.reject(e);
        throw e;
      }
    })();
    return drainPromise;
  };

  installErrorHandlers(app, log, opts.rejected);
  registerCompletions(app, ctx);
  registerChat(app, ctx);
  registerInfo(app, ctx, opts.metrics);
  if (opts.view) registerView(app, opts.view);
  if (opts.adminToken) {
    registerAdmin(app, ctx, {
      token: opts.adminToken,
      drain: (r) => void drain(r).catch(() => {}),
      faults: opts.faults,
    });
  }

  return {
    app,
    get draining() {
      return draining;
    },
    async listen(host, port) {
      const url = await app.listen({ host, port });
      log.info({ url }, 'listening');
      return url;
    },
    drain,
    closed,
    close: () => closeServer(app),
  };
}

const GENERATION_ROUTES = new Set(['/v1/completions', '/v1/chat/completions']);

/** Every error, and every unknown route, as an OpenAI-style error object with its status. */
function installErrorHandlers(app: FastifyInstance, log: Logger, rejected: ServerOptions['rejected']): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const a = err.validation ? fromValidation(err, req.body) : toApiError(err);
    if (a.status >= 500 && !(err instanceof ApiError)) log.error({ err, url: req.url }, 'request error');
    if (rejected && GENERATION_ROUTES.has(req.routeOptions.url ?? '')) {
      if (a.code === 'RACKEMU_ERR_QUEUE_FULL') rejected('queue_full');
      else if (a.code === 'RACKEMU_ERR_DRAINING') rejected('draining');
      else if (a.status >= 400 && a.status < 500) rejected('invalid');
    }
    return reply.code(a.status).headers(a.headers).send(a.body());
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(notFound(req.method, req.url).body()));
}
