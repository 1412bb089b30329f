import type { FastifyInstance } from 'fastify';

/** How long close() lets connections finish what they are writing before it cuts them. */
export const CLOSE_GRACE_MS = 1000;

/**
 * fastify's close() stops listening and closes idle keep-alive connections, but waits for any other:
 * a client that opened a connection and sent nothing (HTTP clients pre-connect) would hold the close
 * for node's headersTimeout (60 s), and a page's event stream never ends by itself. Once there is
 * nothing left to wait for but responses being flushed, every connection is closed after a grace period.
 */
export async function closeServer(app: FastifyInstance): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}
