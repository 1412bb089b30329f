import type { FastifyInstance } from 'fastify';
import { ApiError } from './api-error.js';
import { unixNow, type ServeContext } from './context.js';

/** A Prometheus registry as /metrics needs it (prom-client's Registry). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/**
 * GET /v1/models (and /v1/models/:id), /healthz (the process is up: 200 even while chips load),
 * /ready (200 once every chip is loaded and until a drain begins, else 503: what a load balancer or
 * a Kubernetes readiness probe asks), /metrics (Prometheus text from the registry given).
 */
export function registerInfo(app: FastifyInstance, ctx: ServeContext, metrics: MetricsSource): void {
  const created = unixNow();
  const card = () => ({
    id: ctx.engine.modelName,
    object: 'model',
    created,
    owned_by: 'rackemu',
    root: ctx.engine.modelName,
    parent: null,
    max_model_len: ctx.engine.context, // vLLM's extension
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [card()] }));
  app.get<{ Params: { model: string } }>('/v1/models/:model', async (req) => {
    if (req.params.model !== ctx.engine.modelName) {
      throw new ApiError(
        404,
        `The model \`${req.params.model}\` does not exist`,
        'invalid_request_error',
        'model_not_found',
        'model',
      );
    }
    return card();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const { engine } = ctx;
    const status = ctx.draining() ? 'draining' : engine.ready ? 'ready' : 'loading';
    return reply
      .code(status === 'ready' ? 200 : 503)
      .send({ status, running: engine.running, waiting: engine.waiting });
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.metrics();
    return reply.header('content-type', metrics.contentType).send(text);
  });
}
