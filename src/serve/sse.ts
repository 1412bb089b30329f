import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';

/**
 * Server-sent events: as OpenAI streams them (one `data: <JSON>` event per chunk, a blank line after
 * each, and `data: [DONE]` at the end), or named events (the rack view's `layout` and `update`). The
 * events go through a stream that fastify pipes to the socket, so its hooks and connection handling
 * stay in charge; a client that goes away destroys the stream, and later writes are dropped.
 */
export class SseWriter {
  private readonly stream = new PassThrough();

  constructor(reply: FastifyReply) {
    this.stream.on('error', () => {}); // a write racing a client that went away: nothing to do
    void reply
      .code(200)
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-accel-buffering', 'no') // proxies such as nginx must not hold events back
      .send(this.stream);
  }

  /** The client went away (or the stream ended). */
  get closed(): boolean {
    return this.stream.destroyed || this.stream.writableEnded;
  }

  /** Calls f once the client has gone away, or the stream ended. */
  onClose(f: () => void): void {
    this.stream.once('close', f);
  }

  data(chunk: unknown): void {
    if (!this.closed) this.stream.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }

  /** A named event (`event: <name>`) of data already serialised: one update goes to many pages. */
  event(name: string, data: string): void {
    if (!this.closed) this.stream.write(`event: ${name}\ndata: ${data}\n\n`);
  }

  /** Ends the stream (without OpenAI's `[DONE]`). */
  end(): void {
    if (!this.closed) this.stream.end();
  }

  done(): void {
    if (this.closed) return;
    this.stream.end('data: [DONE]\n\n');
  }
}
