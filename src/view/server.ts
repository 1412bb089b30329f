import Fastify, { type FastifyInstance } from 'fastify';
import { notFound, toApiError } from '../serve/api-error.js';
import { closeServer } from '../serve/close.js';
import { logger } from '../util/log.js';
import type { RackView } from './live.js';
import { registerView } from './routes.js';

/** A server of the rack view alone (`experiment run --watch`): `serve` adds the view to its API instead. */
export interface ViewServer {
  readonly url: string;
  /** Sends the pages a last update and `end`, and stops listening. */
  close(): Promise<void>;
}

export async function startViewServer(view: RackView, host: string, port: number): Promise<ViewServer> {
  const app = Fastify({
    loggerInstance: logger().child({ component: 'view' }, { level: 'warn' }),
  }) as unknown as FastifyInstance;
  registerView(app, view);
  app.setErrorHandler((err, _req, reply) => {
    const a = toApiError(err);
    return reply.code(a.status).send(a.body());
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(notFound(req.method, req.url).body()));
  const url = await app.listen({ host, port });
  return {
    url,
    close: () => closeServer(app),
  };
}
