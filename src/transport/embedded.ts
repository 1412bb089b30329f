/**
 * Embedded transport: chips that are threads of one process talk over MessageChannels.
 *
 * The spawning thread builds one channel per unordered chip pair that the schedule uses (a MessagePort
 * is duplex and keeps per-direction order, so one channel serves both directions at half the ports),
 * and hands each chip the ports whose far ends its peers hold. A frame is posted as its ArrayBuffer in
 * the transfer list: the bytes move between threads without a copy.
 *
 * There is no credit flow control here: a transferred frame costs the same memory whether it waits in
 * the sender's queue or in the receiver's port, and nothing can be flooded (no socket, no server).
 */

import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { TransportError } from '../util/errors.js';
import { ErrorRelay } from './error-relay.js';
import type { ChipEndpoint, EmbeddedTransportConfig, ErrorHandler, FrameHandler, TransportStats } from './types.js';

export interface EmbeddedFabric {
  /** Every chip that has a config (those named in pairs or in `chips`). */
  readonly chips: readonly string[];
  /**
   * The config for one chip and the ports to list in the Worker's transferList. Each chip's config can
   * be taken once (its ports move to the worker). In the main thread, pass config to openEndpoint as is.
   */
  endpointConfig(chipId: string): { config: EmbeddedTransportConfig; transferList: MessagePort[] };
}

function configError(message: string, details: Record<string, unknown> = {}): TransportError {
  return new TransportError('RACKEMU_ERR_TRANSPORT_CONFIG', message, { details });
}

/**
 * Build the channels for a run. `pairs` are the (src, dst) transfers the schedule uses (direction and
 * repeats do not matter; self-pairs need no channel); `chips` adds chips that have no traffic.
 */
export function createEmbeddedFabric(pairs: Iterable<readonly [string, string]>, chips: Iterable<string> = []): EmbeddedFabric {
  const ports = new Map<string, Record<string, MessagePort>>();
  const ensure = (c: string): Record<string, MessagePort> => {
    let r = ports.get(c);
    if (r === undefined) {
      r = Object.create(null) as Record<string, MessagePort>;
      ports.set(c, r);
    }
    return r;
  };
  for (const c of chips) ensure(c);
  for (const [a, b] of pairs) {
    const pa = ensure(a);
    const pb = ensure(b);
    if (a === b || pa[b] !== undefined) continue;
    const { port1, port2 } = new MessageChannel();
    pa[b] = port1;
    pb[a] = port2;
  }
  const taken = new Set<string>();
  return {
    chips: [...ports.keys()],
    endpointConfig(chipId: string) {
      const p = ports.get(chipId);
      if (p === undefined) throw configError(`chip ${chipId} is not part of this embedded fabric`, { chipId });
      if (taken.has(chipId)) throw configError(`the embedded config of chip ${chipId} was already handed out`, { chipId });
      taken.add(chipId);
      return { config: { kind: 'embedded', chipId, ports: p }, transferList: Object.values(p) };
    },
  };
}

export class EmbeddedEndpoint implements ChipEndpoint {
  readonly kind = 'embedded' as const;
  readonly chipId: string;
  private readonly ports: Map<string, MessagePort>;
  private readonly errors = new ErrorRelay();
  private handler: FrameHandler | undefined;
  /** Loopback frames sent before onFrame was called. */
  private readonly early: Array<[Uint8Array, string]> = [];
  private closed = false;
  private framesSent = 0;
  private bytesSent = 0;
  private framesReceived = 0;
  private bytesReceived = 0;

  constructor(config: EmbeddedTransportConfig, onError?: ErrorHandler) {
    this.chipId = config.chipId;
    this.ports = new Map(Object.entries(config.ports));
    if (onError) this.errors.setHandler(onError);
    for (const [peer, port] of this.ports) {
      port.on('messageerror', (e: unknown) =>
        this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `a message from ${peer} could not be deserialised`, { cause: e, details: { src: peer, dst: this.chipId } })),
      );
    }
  }

  send(dst: string, frame: Uint8Array): void {
    const port = this.ports.get(dst);
    this.framesSent++;
    this.bytesSent += frame.length;
    if (this.closed) {
      this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `send to ${dst} after close`, { details: { src: this.chipId, dst } }));
      return;
    }
    if (port === undefined) {
      if (dst === this.chipId) {
        // Loopback keeps the asynchronous delivery every other destination has.
        const copy = frame;
        queueMicrotask(() => this.deliver(copy, dst));
        return;
      }
      throw configError(`no embedded channel from ${this.chipId} to ${dst}: the pair was not in the fabric's pair list`, {
        src: this.chipId,
        dst,
      });
    }
    const buf = frame.buffer;
    let ab: ArrayBuffer;
    if (frame.byteOffset === 0 && frame.byteLength === buf.byteLength && buf instanceof ArrayBuffer) ab = buf;
    else ab = frame.slice().buffer as ArrayBuffer; // a view into a larger (or shared) buffer: copy the frame alone
    port.postMessage(ab, [ab]);
  }

  onFrame(handler: FrameHandler): void {
    const first = this.handler === undefined;
    this.handler = handler;
    if (!first || this.closed) return;
    const early = this.early.splice(0);
    for (const [f, src] of early) this.deliver(f, src);
    // Attaching the listener starts the port; until then the port itself holds early frames in order.
    for (const [peer, port] of this.ports) {
      port.on('message', (ab: ArrayBuffer) => this.deliver(new Uint8Array(ab), peer));
    }
  }

  onError(handler: ErrorHandler): void {
    this.errors.setHandler(handler);
  }

  flush(): Promise<void> {
    // postMessage has already handed every frame to the receiving port.
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closing one end closes the channel; frames already posted by either side are still delivered.
    for (const port of this.ports.values()) port.close();
  }

  stats(): TransportStats {
    return {
      framesSent: this.framesSent,
      bytesSent: this.bytesSent,
      framesReceived: this.framesReceived,
      bytesReceived: this.bytesReceived,
      creditStalls: 0,
      queued: 0,
      maxInFlight: 0,
    };
  }

  private deliver(frame: Uint8Array, src: string): void {
    const h = this.handler;
    if (h === undefined) {
      this.early.push([frame, src]);
      return;
    }
    this.framesReceived++;
    this.bytesReceived += frame.length;
    try {
      h(frame, src);
    } catch (e) {
      this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `frame handler of ${this.chipId} threw on a frame from ${src}`, { cause: e, details: { src, dst: this.chipId } }));
    }
  }
}
