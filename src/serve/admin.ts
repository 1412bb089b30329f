import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './api-error.js';
import type { ServeContext } from './context.js';

/**
 * Admin routes, under /admin, registered only when an admin token is configured (the CLI reads
 * RACKEMU_ADMIN_TOKEN): without one they do not exist (404). Every admin request must carry
 * `Authorization: Bearer <token>`, else 401; tokens are compared in constant time (of their SHA-256
 * digests, so the length leaks nothing either).
 */
/** Fault injection into the live deployment (POST /admin/faults); null until the chips are loaded. */
export interface FaultControl {
  /** Checks and arms one fault given as JSON; throws a coded error (400) when it is bad. */
  inject(body: unknown): { readonly index: number; readonly kind: string; readonly target: string };
  /** Every fault injected so far, with what became of it. */
  list(): readonly unknown[];
}

export function registerAdmin(
  app: FastifyInstance,
  ctx: ServeContext,
  opts: { token: string; drain: (reason: string) => void; faults?: () => FaultControl | null },
): void {
  const want = digest(opts.token);
  void app.register(async (admin) => {
    admin.addHook('onRequest', async (req) => {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
      if (!m || !timingSafeEqual(digest(m[1].trim()), want)) {
        throw new ApiError(
          401,
          'admin routes need Authorization: Bearer <RACKEMU_ADMIN_TOKEN>',
          'authentication_error',
          'invalid_api_key',
          null,
          { 'www-authenticate': 'Bearer realm="rackemu-admin"' },
        );
      }
    });
    // Drain now: stop admitting, finish what is in flight, then the server closes and exits 0 (as on SIGTERM).
    admin.post('/admin/drain', async (req, reply) => {
      ctx.log.info({ remote: req.ip }, 'drain requested by admin');
      opts.drain('admin');
      return reply.code(202).send({ status: 'draining', running: ctx.engine.running, waiting: ctx.engine.waiting });
    });
    // A fault into the live deployment: { kind, target, at?, ...params } as in an experiment file (docs/faults.md)
    admin.post('/admin/faults', async (req, reply) => {
      const control = opts.faults?.() ?? null;
      if (control === null) {
        throw new ApiError(
          503,
          'the chips are still loading: no fault can be injected yet',
          'service_unavailable_error',
          'not_ready',
        );
      }
      const armed = control.inject(req.body);
      ctx.log.warn({ remote: req.ip, fault: armed.kind, target: armed.target }, 'fault armed by admin');
      return reply.code(202).send({ status: 'armed', fault: armed.index, kind: armed.kind, target: armed.target });
    });
    admin.get('/admin/faults', async () => ({ faults: opts.faults?.()?.list() ?? [] }));
  });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
