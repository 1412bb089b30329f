/**
 * NATS transport: each chip endpoint has its own connection, subscribes to its own data subject, and
 * publishes to its peers' data subjects (nats-subjects.ts); nats-connect.ts opens it.
 *
 * Order and loss: NATS core delivers one connection's messages to one subscriber in publish order, and
 * every message to a destination goes through one FIFO, so frames of a (src, dst) pair arrive in order,
 * and chunks of a frame arrive contiguously. Core NATS drops messages only for slow consumers and across
 * reconnects; the credit window keeps far below the server's slow-consumer limit, and reconnect is off
 * by default so a lost connection is an error rather than a silent gap. The caller must open every
 * endpoint before any chip sends (a message to a subject with no subscriber is dropped by the server).
 *
 * Credit flow control, per destination: at most window.frames messages and window.bytes bytes
 * un-acknowledged. Beyond that, messages wait in the destination's FIFO (send never blocks) and the
 * transition to waiting counts one credit stall. The receiver counts what it has taken off the socket
 * and handled per sender and grants it back in one 8-byte message per sender per event-loop turn
 * ([u32 messages][u32 bytes]), so acks are batched under load and never held back when idle.
 *
 * The endpoint is one cohesive state machine (credit windows, cork, bundles, chunks, delivery, grants),
 * so this file is kept whole past the 400-line guideline.
 */

/* eslint-disable max-lines -- one cohesive state machine (see above) */

import type { Msg, NatsConnection, PublishOptions } from '@nats-io/transport-node';
import { TransportError } from '../util/errors.js';
import {
  bundleCount,
  bundleFrameBytes,
  bundleFrames,
  bundleHeadBytes,
  bundleRecordBytes,
  encodeBundle,
  isBundle,
} from './bundle.js';
import { putU32, u32 } from './bytes.js';
import { chunkFrame, FrameReassembler, isChunk } from './chunk.js';
import { Delivery } from './delivery.js';
import { Fifo } from './fifo.js';
import { chipOfCreditSubject, creditSubject, dataSubject } from './nats-subjects.js';
import type { BundleHandler, ChipEndpoint, ErrorHandler, FrameHandler, TransportStats } from './types.js';

interface Dest {
  readonly id: string;
  readonly subject: string;
  readonly queue: Fifo<Uint8Array>;
  /** Frames held while corked, sent as bundles at uncork. */
  held: Uint8Array[];
  inFlightMsgs: number;
  inFlightBytes: number;
  stalled: boolean;
}

interface Grant {
  msgs: number;
  bytes: number;
}

export class NatsEndpoint implements ChipEndpoint {
  readonly kind = 'nats' as const;
  readonly chipId: string;
  /** Largest message this endpoint publishes; frames above it are chunked. */
  readonly maxMessageBytes: number;
  private readonly runId: string;
  private readonly windowFrames: number;
  private readonly windowBytes: number;
  private readonly mySubject: string;
  private readonly myCreditSubject: string;
  private readonly pubOpts: PublishOptions;
  private readonly creditOpts: PublishOptions;
  private readonly dests = new Map<string, Dest>();
  private readonly destsBySubject = new Map<string, Dest>();
  private readonly grants = new Map<string, Grant>();
  private readonly srcIds = new Map<string, string>();
  private readonly reassembler = new FrameReassembler();
  private readonly delivery: Delivery;
  /** Frames that came before onFrame: they cannot wait in the socket as embedded's wait in its rings. */
  private readonly early: Array<[Uint8Array, string]> = [];
  private drainWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private grantScheduled = false;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private chunkSeq = 0;
  private queuedTotal = 0;
  private framesSent = 0;
  private bytesSent = 0;
  private creditStalls = 0;
  private maxInFlight = 0;
  private messagesSent = 0;
  private corked = false;
  /** Destinations with held frames, in the order they were first held. */
  private readonly holding: Dest[] = [];

  constructor(
    private readonly nc: NatsConnection,
    runId: string,
    chipId: string,
    limits: { windowFrames: number; windowBytes: number; maxMsg: number },
    onError?: ErrorHandler,
  ) {
    this.runId = runId;
    this.chipId = chipId;
    this.windowFrames = limits.windowFrames;
    this.windowBytes = limits.windowBytes;
    this.maxMessageBytes = limits.maxMsg;
    this.mySubject = dataSubject(runId, chipId);
    this.myCreditSubject = creditSubject(runId, chipId);
    this.pubOpts = { reply: this.myCreditSubject };
    this.creditOpts = { reply: this.mySubject };
    this.delivery = new Delivery(chipId, onError);
    nc.subscribe(this.mySubject, {
      callback: (err, msg) => (err ? this.fail('data subscription failed', err) : this.onData(msg)),
    });
    nc.subscribe(this.myCreditSubject, {
      callback: (err, msg) => (err ? this.fail('credit subscription failed', err) : this.onCredit(msg)),
    });
    void this.watchStatus();
    void nc.closed().then((err) => {
      if (err && !this.closing) this.fail('NATS connection closed', err);
      this.rejectDrainWaiters(
        new TransportError('RACKEMU_ERR_TRANSPORT', `NATS connection of ${chipId} is closed`, {
          cause: err ?? undefined,
        }),
      );
    });
  }

  send(dst: string, frame: Uint8Array): void {
    const d = this.dests.get(dst) ?? this.addDest(dst);
    this.framesSent++;
    this.bytesSent += frame.length;
    if (this.closing) {
      const details = { src: this.chipId, dst };
      this.delivery.report(new TransportError('RACKEMU_ERR_TRANSPORT', `send to ${dst} after close`, { details }));
      return;
    }
    if (this.corked) {
      if (d.held.length === 0) this.holding.push(d);
      d.held.push(frame);
      return;
    }
    this.sendNow(d, frame);
  }

  sendCopy(dst: string, frame: Uint8Array): void {
    // nats.js keeps a reference to what it publishes until the socket write: the caller's buffer
    // must not be reused before that, so take a copy that the transport owns
    this.send(dst, new Uint8Array(frame));
  }

  sendBundle(dst: string, bundle: Uint8Array): void {
    const d = this.dests.get(dst) ?? this.addDest(dst);
    this.framesSent += bundleCount(bundle);
    this.bytesSent += bundleFrameBytes(bundle);
    if (this.closing) {
      const details = { src: this.chipId, dst };
      this.delivery.report(new TransportError('RACKEMU_ERR_TRANSPORT', `send to ${dst} after close`, { details }));
      return;
    }
    // frames held for dst go first, in order; the bundle is a message of its own (chunked if too large)
    if (d.held.length > 0) {
      this.holding.splice(this.holding.indexOf(d), 1);
      this.releaseDest(d);
    }
    this.sendNow(d, new Uint8Array(bundle));
  }

  // cork/uncork differ from embedded's in what is held: frames in a list per destination, bundled at release.
  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.releaseAll();
  }

  /** Send every held frame: per destination, in order, as few bundles as the message limit allows. */
  private releaseAll(): void {
    if (this.holding.length === 0) return;
    for (const d of this.holding) this.releaseDest(d);
    this.holding.length = 0;
  }

  /** Send the frames held for `d` (the caller takes d off `holding`). */
  private releaseDest(d: Dest): void {
    const frames = d.held;
    d.held = [];
    let start = 0;
    let bytes = 0;
    const emit = (end: number): void => {
      if (end - start === 1) this.sendNow(d, frames[start]);
      else if (end > start) this.enqueue(d, encodeBundle(frames.slice(start, end)));
      start = end;
      bytes = 0;
    };
    for (let i = 0; i < frames.length; i++) {
      const add = bundleRecordBytes(frames[i].length);
      if (bundleHeadBytes(i + 1 - start) + bytes + add > this.maxMessageBytes) {
        emit(i);
        // A frame too large for any bundle goes on its own (chunked if need be), still in order.
        if (bundleHeadBytes(1) + add > this.maxMessageBytes) {
          this.sendNow(d, frames[i]);
          start = i + 1;
          continue;
        }
      }
      bytes += add;
    }
    emit(frames.length);
  }

  private sendNow(d: Dest, frame: Uint8Array): void {
    if (frame.length <= this.maxMessageBytes) {
      this.enqueue(d, frame);
      return;
    }
    // Keys only need to be unique per sender: the receiver scopes reassembly by our credit subject.
    const chunks = chunkFrame(frame, this.maxMessageBytes, (this.chunkSeq++).toString(36));
    for (const c of chunks) this.enqueue(d, c);
  }

  onFrame(handler: FrameHandler): void {
    this.delivery.frameHandler = handler;
    const early = this.early.splice(0);
    for (const [f, src] of early) this.deliver(f, src);
  }

  onBundle(handler: BundleHandler): void {
    this.delivery.bundleHandler = handler;
  }

  onError(handler: ErrorHandler): void {
    this.delivery.errors.setHandler(handler);
  }

  async flush(): Promise<void> {
    this.releaseAll();
    if (this.queuedTotal > 0) {
      await new Promise<void>((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
    }
    try {
      await this.nc.flush();
    } catch (cause) {
      throw new TransportError('RACKEMU_ERR_TRANSPORT', `NATS flush of ${this.chipId} failed`, { cause });
    }
  }

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  stats(): TransportStats {
    return {
      framesSent: this.framesSent,
      bytesSent: this.bytesSent,
      framesReceived: this.delivery.framesReceived,
      bytesReceived: this.delivery.bytesReceived,
      creditStalls: this.creditStalls,
      sleeps: 0,
      messagesSent: this.messagesSent,
      queued: this.queuedTotal,
      maxInFlight: this.maxInFlight,
    };
  }

  private async doClose(): Promise<void> {
    this.releaseAll();
    this.closing = true;
    if (this.queuedTotal > 0) {
      const waiting: Record<string, number> = {};
      for (const d of this.dests.values()) {
        if (d.queue.length > 0) waiting[d.id] = d.queue.length;
        d.queue.clear();
      }
      this.delivery.report(
        new TransportError(
          'RACKEMU_ERR_TRANSPORT',
          `${this.chipId} closed with ${this.queuedTotal} messages still waiting for credit`,
          {
            details: { src: this.chipId, waiting },
          },
        ),
      );
      this.queuedTotal = 0;
    }
    this.rejectDrainWaiters(new TransportError('RACKEMU_ERR_TRANSPORT', `${this.chipId} was closed during flush`));
    // Give back credit we still owe, so peers that keep running are not left stalled on us.
    this.grantCredit();
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch {
      if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    }
  }

  private addDest(dst: string): Dest {
    const subject = dataSubject(this.runId, dst); // throws a config error for an unusable chip id
    const d: Dest = {
      id: dst,
      subject,
      queue: new Fifo<Uint8Array>(),
      held: [],
      inFlightMsgs: 0,
      inFlightBytes: 0,
      stalled: false,
    };
    this.dests.set(dst, d);
    this.destsBySubject.set(subject, d);
    return d;
  }

  private fits(d: Dest, len: number): boolean {
    // A message larger than the byte window still goes alone, or it could never be sent.
    return d.inFlightMsgs < this.windowFrames && (d.inFlightMsgs === 0 || d.inFlightBytes + len <= this.windowBytes);
  }

  private enqueue(d: Dest, m: Uint8Array): void {
    if (d.queue.length === 0 && this.fits(d, m.length)) {
      this.publish(d, m);
      return;
    }
    d.queue.push(m);
    this.queuedTotal++;
    if (!d.stalled) {
      d.stalled = true;
      this.creditStalls++;
    }
  }

  private publish(d: Dest, m: Uint8Array): void {
    try {
      this.nc.publish(d.subject, m, this.pubOpts);
    } catch (cause) {
      this.fail(`publish to ${d.id} failed`, cause, { dst: d.id });
      return;
    }
    this.messagesSent++;
    d.inFlightMsgs++;
    d.inFlightBytes += m.length;
    if (d.inFlightMsgs > this.maxInFlight) this.maxInFlight = d.inFlightMsgs;
  }

  resetFlow(): void {
    for (const d of this.dests.values()) {
      d.inFlightMsgs = 0;
      d.inFlightBytes = 0;
      const q = d.queue;
      while (q.length > 0 && this.fits(d, q.peek()!.length)) {
        this.queuedTotal--;
        this.publish(d, q.shift()!);
      }
      if (q.length === 0) d.stalled = false;
    }
  }

  private onCredit(msg: Msg): void {
    const data = msg.data;
    if (data.length === 0) return this.onStatus(msg, 'credit');
    const d = this.destsBySubject.get(msg.reply ?? '');
    if (d === undefined || data.length < 8) {
      this.fail(`unexpected credit message (from ${msg.reply ?? '?'}, ${data.length} bytes)`, undefined);
      return;
    }
    const msgs = u32(data, 0);
    const bytes = u32(data, 4);
    d.inFlightMsgs = Math.max(0, d.inFlightMsgs - msgs);
    d.inFlightBytes = Math.max(0, d.inFlightBytes - bytes);
    const q = d.queue;
    while (q.length > 0 && this.fits(d, q.peek()!.length)) {
      this.queuedTotal--;
      this.publish(d, q.shift()!);
    }
    if (q.length === 0) d.stalled = false;
    if (this.queuedTotal === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const x of w) x.resolve();
    }
  }

  private onData(msg: Msg): void {
    const data = msg.data;
    // No frame or chunk is empty: an empty message is a server status (see onStatus).
    if (data.length === 0) return this.onStatus(msg, 'data');
    const from = msg.reply;
    if (!from) {
      this.fail(`message on ${this.mySubject} without a sender address`, undefined);
      return;
    }
    let frame: Uint8Array | undefined = data;
    if (isChunk(data)) {
      try {
        frame = this.reassembler.push(data, from);
      } catch (e) {
        frame = undefined;
        this.delivery.report(e as TransportError);
      }
    }
    // a bundle may have come whole or (larger than a message) in chunks
    if (frame !== undefined && isBundle(frame)) {
      this.deliverBundle(frame, this.srcOf(from));
      frame = undefined;
    }
    if (frame !== undefined) this.deliver(frame, this.srcOf(from));
    // Credit after handling: a slow handler slows its senders instead of piling up at the server.
    let g = this.grants.get(from);
    if (g === undefined) {
      g = { msgs: 0, bytes: 0 };
      this.grants.set(from, g);
    }
    g.msgs++;
    g.bytes += data.length;
    if (!this.grantScheduled) {
      this.grantScheduled = true;
      // One grant per sender per event-loop turn: every message of a socket read is dispatched in the
      // same turn, so acks batch under load and still go out at once when traffic is light.
      setImmediate(this.grantCredit);
    }
  }

  /**
   * nats.js announces header support, so the server answers a message that carries a reply subject and
   * finds no subscriber with an empty "503 no responders" status sent to that reply subject. On our credit
   * subject that means a frame or chunk we published reached no chip (the destination was not open yet,
   * or had closed): it is lost, and said so. On our data subject it is a credit grant that reached a sender
   * that has closed: harmless.
   */
  private onStatus(msg: Msg, on: 'data' | 'credit'): void {
    const h = msg.headers;
    if (on === 'data' || this.closing) return;
    if (h?.code === 503) {
      this.fail(
        'a message this chip published reached no subscriber (destination not open yet, or closed): it is lost',
        undefined,
        {
          status: 503,
        },
      );
    } else {
      this.fail(
        `unexpected empty message on ${msg.subject} (status ${h?.code ?? 'none'} ${h?.description ?? ''})`,
        undefined,
      );
    }
  }

  private readonly grantCredit = (): void => {
    this.grantScheduled = false;
    for (const [to, g] of this.grants) {
      if (g.msgs === 0) continue;
      const b = new Uint8Array(8);
      putU32(b, 0, g.msgs);
      putU32(b, 4, g.bytes);
      g.msgs = 0;
      g.bytes = 0;
      if (this.nc.isClosed()) continue;
      try {
        this.nc.publish(to, b, this.creditOpts);
      } catch (cause) {
        if (!this.closing) this.fail(`credit grant to ${to} failed`, cause);
      }
    }
  };

  private srcOf(from: string): string {
    let id = this.srcIds.get(from);
    if (id === undefined) {
      id = chipOfCreditSubject(this.runId, from);
      this.srcIds.set(from, id);
    }
    return id;
  }

  /**
   * A bundle goes whole to the bundle handler if it takes it, else frame by frame. Before onFrame it is
   * not offered: its frames wait with the other early frames, so they keep their order.
   */
  private deliverBundle(bundle: Uint8Array, src: string): void {
    const delivery = this.delivery;
    if (delivery.frameHandler !== undefined && delivery.takeBundle(bundle, src)) return;
    for (const f of bundleFrames(bundle, delivery.report)) this.deliver(f, src);
  }

  private deliver(frame: Uint8Array, src: string): void {
    if (this.delivery.frameHandler === undefined) this.early.push([frame, src]);
    else this.delivery.frame(frame, src);
  }

  private fail(message: string, cause: unknown, details: Record<string, unknown> = {}): void {
    const error = new TransportError('RACKEMU_ERR_TRANSPORT', `${this.chipId}: ${message}`, {
      cause,
      details: { chipId: this.chipId, ...details },
    });
    this.delivery.report(error);
  }

  private rejectDrainWaiters(err: TransportError): void {
    if (this.drainWaiters.length === 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const x of w) x.reject(err);
  }

  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (this.closing) continue;
        switch (s.type) {
          case 'disconnect':
            this.fail(`disconnected from ${s.server}`, undefined, { server: s.server });
            break;
          case 'reconnect':
            // what was in flight across the gap is lost (the run that lost it failed): start the flow anew
            this.resetFlow();
            break;
          case 'error':
            this.fail('NATS server error', s.error);
            break;
          case 'slowConsumer':
            this.fail(`slow consumer on ${s.sub.getSubject()} (${s.pending} pending)`, undefined);
            break;
          case 'staleConnection':
            this.fail('stale connection (server stopped answering pings)', undefined);
            break;
          default:
            break;
        }
      }
    } catch {
      // The status iterator ends with the connection; closure is reported by closed() above.
    }
  }
}
