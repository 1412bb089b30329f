/**
 * Embedded transport: chips that are threads of one process talk through shared memory.
 *
 * One endpoint per chip over the fabric's rings and doorbells (embedded-fabric.ts makes them; their
 * layout and its handshakes are in embedded-layout.ts). This file is one cohesive state machine, the
 * ring protocol of both ends (publish, stream, wait for room, collect, wake), so it is kept whole past
 * the 400-line guideline.
 *
 * A frame costs one copy into the ring (send), one copy out (delivery: the frames that are in the ring
 * when the receiver collects it come out in one buffer, each frame a view into it that the handler
 * owns), and a doorbell bump; a futex wake only when the receiver is asleep.
 *
 * Back-pressure instead of credit: send copies into the ring at once when it has room; when it has not,
 * send blocks the calling thread (Atomics.wait, in 50 ms slices) until the consumer has made room, up to
 * sendTimeoutMs (default 60 s), then reports a TransportError through onError and drops the frame.
 * No deadlock by design: while blocked, the sender keeps collecting its own inbound rings into a private
 * queue (without running the frame handler), so two chips blocked sending to each other both progress;
 * and a consumer that lives in the same thread as the blocked sender is collected directly.
 */
/* eslint-disable max-lines -- one cohesive state machine (see above) */

import { performance } from 'node:perf_hooks';
import { TransportError } from '../util/errors.js';
import { bundleCount, bundleFrameBytes, bundleFrames, isBundle } from './bundle.js';
import { u32 } from './bytes.js';
import { Delivery } from './delivery.js';
import { DEFAULT_SEND_TIMEOUT_MS } from './embedded-fabric.js';
import {
  ARMED,
  ASYNC,
  BROKEN,
  CLOSED,
  FRAMES,
  put,
  R,
  ringParts,
  SEQ,
  SLEEP,
  SLOT_WORDS,
  W,
  WAITING,
  WANT,
  type InRing,
  type OutRing,
} from './embedded-layout.js';
import { configError } from './errors.js';
import type {
  BundleHandler,
  ChipEndpoint,
  EmbeddedTransportConfig,
  ErrorHandler,
  FrameHandler,
  TransportStats,
} from './types.js';

/** Longest single Atomics.wait of a blocked sender (it re-checks its state in between). */
const SEND_WAIT_SLICE_MS = 50;

type WaitAsyncResult =
  { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (
  Atomics as unknown as {
    waitAsync?: (ta: Int32Array, index: number, value: number, timeout?: number) => WaitAsyncResult;
  }
).waitAsync;

/** Endpoints of this thread, by fabric and chip: a blocked sender collects a same-thread receiver directly. */
const localEndpoints = new Map<string, EmbeddedEndpoint>();

export class EmbeddedEndpoint implements ChipEndpoint {
  readonly kind = 'embedded' as const;
  readonly chipId: string;
  private readonly fabricId: string;
  private readonly key: string;
  private readonly out = new Map<string, OutRing>();
  private readonly in: InRing[] = [];
  private readonly bells: Int32Array;
  /** Word offset of this chip's doorbell slot. */
  private readonly me: number;
  private readonly sendTimeoutMs: number;
  private readonly delivery: Delivery;
  /**
   * Frames collected and not yet delivered (and their senders), in arrival order: [head, tail). The arrays keep their
   * capacity when emptied.
   */
  private queue: Array<Uint8Array | undefined> = [];
  private queueSrc: Array<string | undefined> = [];
  private tail = 0;
  private head = 0;
  private closed = false;
  private asyncWaiting = false;
  private drainScheduled = false;
  private rearmScheduled = false;
  /** Keeps the thread's event loop alive while frames may arrive (a pending waitAsync does not). */
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  private framesSent = 0;
  private bytesSent = 0;
  /** Complete frames collected from the inbound rings (compared with the doorbell's FRAMES). */
  private taken = 0;
  private stalls = 0;
  private sleeps = 0;
  private publishes = 0;
  private corked = false;
  /** Rings with held (written, unpublished) frames, in the order they were first written. */
  private readonly holding: OutRing[] = [];

  /** Frames are delivered by pollSync only: the thread is never woken through its event loop. */
  private readonly pollOnly: boolean;

  constructor(config: EmbeddedTransportConfig, onError?: ErrorHandler, delivery: 'async' | 'poll' = 'async') {
    this.pollOnly = delivery === 'poll';
    if (!(config.doorbells instanceof SharedArrayBuffer) || config.slots?.[config.chipId] === undefined) {
      throw configError(
        `embedded config of ${config.chipId} is malformed (no shared doorbells): it must come from createEmbeddedFabric`,
        { chipId: config.chipId },
      );
    }
    if (waitAsync === undefined) throw configError('the embedded transport needs Atomics.waitAsync (Node >= 16)');
    this.chipId = config.chipId;
    this.fabricId = config.fabricId;
    this.key = `${config.fabricId}\u0000${config.chipId}`;
    this.bells = new Int32Array(config.doorbells);
    this.me = config.slots[config.chipId] * SLOT_WORDS;
    this.sendTimeoutMs = config.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    this.delivery = new Delivery(config.chipId, onError);
    const bellOf = (peer: string): number => config.slots[peer] * SLOT_WORDS;
    for (const [peer, sab] of Object.entries(config.outbound))
      this.out.set(peer, { ...ringParts(sab, peer, bellOf(peer)), w: 0, r: 0, held: 0, broken: false });
    for (const [peer, sab] of Object.entries(config.inbound))
      this.in.push({ ...ringParts(sab, peer, bellOf(peer)), r: 0, partial: null, filled: 0, dead: false });
    // A config is opened once; start from whatever the rings hold (all zero for a fresh fabric).
    for (const o of this.out.values()) {
      o.w = Atomics.load(o.hdr, W);
      o.r = Atomics.load(o.hdr, R);
    }
    for (const i of this.in) i.r = Atomics.load(i.hdr, R);
    localEndpoints.set(this.key, this);
  }

  send(dst: string, frame: Uint8Array): void {
    this.framesSent++;
    this.bytesSent += frame.length;
    this.write(dst, frame, 1);
  }

  sendCopy(dst: string, frame: Uint8Array): void {
    // send copies into the ring (or, for loopback, into a fresh buffer) before it returns
    this.send(dst, frame);
  }

  sendBundle(dst: string, bundle: Uint8Array): void {
    // one record, like a frame: the receiver tells them apart by the bundle marker
    const frames = bundleCount(bundle);
    this.framesSent += frames;
    this.bytesSent += bundleFrameBytes(bundle);
    this.write(dst, bundle, frames);
  }

  /** Write one record (a frame, or a bundle of `frames` frames) into dst's ring. */
  private write(dst: string, frame: Uint8Array, frames: number): void {
    if (this.closed) {
      const details = { src: this.chipId, dst };
      this.delivery.report(new TransportError('RACKEMU_ERR_TRANSPORT', `send to ${dst} after close`, { details }));
      return;
    }
    const ring = this.out.get(dst);
    if (ring === undefined) {
      if (dst === this.chipId) {
        // Loopback: a copy, delivered asynchronously (or by the next pollSync) like any other frame.
        this.enqueue(frame.slice(), dst);
        if (this.delivery.frameHandler !== undefined && !this.pollOnly) this.scheduleDrain();
        return;
      }
      throw configError(`no embedded ring from ${this.chipId} to ${dst}: the pair was not in the fabric's pair list`, {
        src: this.chipId,
        dst,
      });
    }
    if (ring.broken || Atomics.load(ring.hdr, CLOSED) !== 0) {
      // The receiver closed (frames to a closed endpoint are dropped, as they were on a closed port),
      // or an earlier send timed out in the middle of a frame (already reported).
      return;
    }
    const len = frame.length;
    const need = 4 + ((len + 3) & ~3);
    if (need > ring.cap - ((ring.w - ring.r) | 0)) {
      ring.r = Atomics.load(ring.hdr, R);
      if (need > ring.cap - ((ring.w - ring.r) | 0)) {
        // Everything held goes out before the thread may block: the receiver can only make room by
        // taking what this ring holds, and other chips may need our other held frames to go on.
        this.releaseAll();
        this.sendSlow(ring, frame, need, frames);
        return;
      }
    }
    const w = ring.w;
    ring.words[(w & ring.mask) >> 2] = len;
    put(ring, (w + 4) | 0, frame, 0, len);
    if (!this.corked) {
      this.publish(ring, (w + need) | 0, frames);
      return;
    }
    // Corked: written, not yet visible. The receiver is told once, for the whole batch, at uncork.
    ring.w = (w + need) | 0;
    if (ring.held === 0) this.holding.push(ring);
    ring.held += frames;
  }

  // cork/uncork differ from NATS's in what is held: frames written to the ring, not yet published.
  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.releaseAll();
  }

  /** Publish every held frame (each ring's batch with one doorbell). */
  private releaseAll(): void {
    if (this.holding.length === 0) return;
    for (const ring of this.holding) {
      const n = ring.held; // > 0: a ring is in `holding` only while it holds frames
      ring.held = 0;
      this.publish(ring, ring.w, n);
    }
    this.holding.length = 0;
  }

  onFrame(handler: FrameHandler): void {
    const first = this.delivery.frameHandler === undefined;
    this.delivery.frameHandler = handler;
    if (!first || this.closed || this.pollOnly) return;
    // Like a port with a message listener (or a NATS socket), an endpoint that receives keeps its
    // thread alive until close().
    this.keepAlive = setInterval(() => undefined, 0x7fffffff);
    this.rearm();
  }

  onBundle(handler: BundleHandler): void {
    this.delivery.bundleHandler = handler;
  }

  onError(handler: ErrorHandler): void {
    this.delivery.errors.setHandler(handler);
  }

  /**
   * Block this thread until at least `atLeast` frames have been delivered by this call (or timeoutMs
   * passes), delivering every available frame to the handler, synchronously. Returns how many were
   * delivered. Producers wake the thread only once enough whole frames are waiting (FRAMES/WANT).
   */
  pollSync(timeoutMs: number, atLeast = 1): number {
    if (this.delivery.frameHandler === undefined) {
      const message = `pollSync on ${this.chipId} before onFrame: register the frame handler first`;
      throw configError(message, { chipId: this.chipId });
    }
    if (this.closed) return 0;
    this.releaseAll(); // a thread never sleeps on frames it holds back
    this.suspendAsync();
    const b = this.bells;
    const want = Math.max(1, atLeast);
    const deadline = performance.now() + timeoutMs;
    let delivered = 0;
    for (;;) {
      const seq = Atomics.load(b, this.me + SEQ);
      delivered += this.drain();
      if (delivered >= want || this.closed) return delivered;
      const left = deadline - performance.now();
      if (left <= 0) return delivered;
      Atomics.store(b, this.me + WANT, (this.taken + want - delivered) | 0);
      Atomics.store(b, this.me + SLEEP, 1);
      this.sleeps++;
      Atomics.wait(b, this.me + SEQ, seq, left);
      Atomics.store(b, this.me + SLEEP, 0);
    }
  }

  flush(): Promise<void> {
    // send returns only once the whole frame is in the receiver's ring (or was dropped and reported);
    // held frames are published now.
    this.releaseAll();
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.releaseAll();
    this.closed = true;
    if (localEndpoints.get(this.key) === this) localEndpoints.delete(this.key);
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    for (const ring of this.in) {
      Atomics.store(ring.hdr, CLOSED, 1);
      // A producer blocked on this ring sees CLOSED once woken, and stops waiting.
      if (Atomics.load(ring.hdr, WAITING) !== 0) this.ringDoorbell(ring.peerBell, true);
    }
    const b = this.bells;
    Atomics.store(b, this.me + ARMED, 0);
    Atomics.add(b, this.me + ASYNC, 1);
    Atomics.notify(b, this.me + ASYNC); // ends the async loop's pending waitAsync
    this.queue = [];
    this.queueSrc = [];
    this.head = 0;
    this.tail = 0;
  }

  stats(): TransportStats {
    return {
      framesSent: this.framesSent,
      bytesSent: this.bytesSent,
      framesReceived: this.delivery.framesReceived,
      bytesReceived: this.delivery.bytesReceived,
      creditStalls: this.stalls,
      sleeps: this.sleeps,
      messagesSent: this.publishes,
      queued: 0,
      maxInFlight: 0,
    };
  }

  /**
   * Make `newW` visible to the consumer and ring its doorbell; `frames`: the whole frames this
   * completes (0 for a piece of a streamed frame).
   */
  private publish(ring: OutRing, newW: number, frames: number): void {
    ring.w = newW;
    this.publishes++;
    Atomics.store(ring.hdr, W, newW);
    // A partial frame always wakes a sleeper (it must drain the ring for the rest to come); whole
    // ones only once the sleeper's count of frames is reached.
    const framesNow = frames > 0 ? Atomics.add(this.bells, ring.peerBell + FRAMES, frames) + frames : undefined;
    this.ringDoorbell(ring.peerBell, true, framesNow);
  }

  /**
   * Bump a chip's doorbell; wake its thread if it sleeps and, if `async`, its async loop if armed.
   * With `frames` (the FRAMES count after publishing a whole frame), the thread is woken only if that
   * reaches the count it waits for (WANT); without, whatever it waits for (a frame's first pieces, a
   * ring it sends on got room, a ring broke).
   */
  private ringDoorbell(bell: number, async: boolean, frames?: number): void {
    const b = this.bells;
    Atomics.add(b, bell + SEQ, 1);
    if (
      Atomics.load(b, bell + SLEEP) !== 0 &&
      (frames === undefined || ((frames - Atomics.load(b, bell + WANT)) | 0) >= 0)
    )
      Atomics.notify(b, bell + SEQ);
    if (async && Atomics.load(b, bell + ARMED) !== 0) {
      Atomics.add(b, bell + ASYNC, 1);
      Atomics.notify(b, bell + ASYNC);
    }
  }

  /**
   * The ring lacks room for the whole record. A record that fits in the ring waits for room and is
   * written whole; a longer one is streamed: what fits, publish, wait for the consumer, and so on.
   */
  private sendSlow(ring: OutRing, frame: Uint8Array, need: number, frames: number): void {
    const deadline = performance.now() + this.sendTimeoutMs;
    this.stalls++;
    const len = frame.length;
    let w = ring.w;
    let state = this.waitForRoom(ring, deadline, need <= ring.cap ? need : 4);
    if (state !== 'ok') return this.sendFailed(ring, state, false, len);
    if (need <= ring.cap) {
      ring.words[(w & ring.mask) >> 2] = len;
      put(ring, (w + 4) | 0, frame, 0, len);
      this.publish(ring, (w + need) | 0, frames);
      return;
    }
    ring.words[(w & ring.mask) >> 2] = len;
    w = (w + 4) | 0;
    let off = 0;
    for (;;) {
      const free = ring.cap - ((w - ring.r) | 0);
      if (free > 0 && off < len) {
        const last = len - off <= free;
        const n = last ? len - off : free; // free is a multiple of 4, so a partial piece keeps alignment
        put(ring, w, frame, off, n);
        off += n;
        w = (w + (last ? (n + 3) & ~3 : n)) | 0;
      }
      if (off === len) {
        this.publish(ring, w, frames);
        return;
      }
      this.publish(ring, w, 0);
      state = this.waitForRoom(ring, deadline, 4);
      if (state !== 'ok') return this.sendFailed(ring, state, true, len);
    }
  }

  /**
   * Wait until the ring has `room` free bytes. Meanwhile keep the cycle of senders moving: collect
   * our own inbound rings (a peer blocked sending to us gets room) and a same-thread receiver's.
   */
  private waitForRoom(ring: OutRing, deadline: number, room: number): 'ok' | 'closed' | 'timeout' {
    const b = this.bells;
    const local = localEndpoints.get(`${this.fabricId}\u0000${ring.peer}`);
    for (;;) {
      ring.r = Atomics.load(ring.hdr, R);
      if (ring.cap - ((ring.w - ring.r) | 0) >= room) return 'ok';
      if (Atomics.load(ring.hdr, CLOSED) !== 0) return 'closed';
      if (local !== undefined && !local.closed) {
        // The receiver lives in this thread: it cannot run while we wait, so take its frames for it.
        local.collect();
        ring.r = Atomics.load(ring.hdr, R);
        if (ring.cap - ((ring.w - ring.r) | 0) >= room) return 'ok';
      }
      const seq = Atomics.load(b, this.me + SEQ);
      Atomics.store(ring.hdr, WAITING, 1);
      ring.r = Atomics.load(ring.hdr, R);
      if (ring.cap - ((ring.w - ring.r) | 0) >= room) return 'ok';
      // Only the receiver can make room, and it may sleep until more frames than this ring holds are
      // in (FRAMES/WANT): wake it whatever it waits for, or both would wait for the other.
      this.ringDoorbell(ring.peerBell, true);
      this.collect();
      const left = deadline - performance.now();
      if (left <= 0) return 'timeout';
      Atomics.store(b, this.me + WANT, (this.taken + 1) | 0); // any frame: collecting keeps senders moving
      Atomics.store(b, this.me + SLEEP, 1);
      this.sleeps++;
      Atomics.wait(b, this.me + SEQ, seq, Math.min(SEND_WAIT_SLICE_MS, left));
      Atomics.store(b, this.me + SLEEP, 0);
    }
  }

  private sendFailed(ring: OutRing, state: 'closed' | 'timeout', midFrame: boolean, len: number): void {
    if (state === 'closed') return; // the receiver closed while we waited: dropped, as on a closed port
    if (midFrame) {
      // Part of the frame is in the ring: nothing more can follow it on this ring.
      ring.broken = true;
      Atomics.store(ring.hdr, BROKEN, 1);
      this.ringDoorbell(ring.peerBell, true);
    }
    this.delivery.report(
      new TransportError(
        'RACKEMU_ERR_TRANSPORT',
        `send from ${this.chipId} to ${ring.peer} timed out after ${this.sendTimeoutMs} ms: the receiver's ring stayed full (is it still running?); ${midFrame ? 'the ring is now unusable' : 'the frame was dropped'}`,
        { details: { src: this.chipId, dst: ring.peer, frameBytes: len, ringBytes: ring.cap } },
      ),
    );
  }

  /**
   * Move every complete record (frame or bundle) out of the inbound rings into the queue (no handler runs); returns the
   * frames.
   */
  private collect(): number {
    let got = 0;
    for (const ring of this.in) {
      if (ring.dead) continue;
      const w = Atomics.load(ring.hdr, W);
      let r = ring.r;
      if (r === w) {
        if (ring.partial !== null && Atomics.load(ring.hdr, BROKEN) !== 0) this.inboundBroken(ring);
        continue;
      }
      const { data, mask, cap } = ring;
      if (ring.partial === null) {
        // The whole records in the ring (a batch from a corked sender, or frames that piled up) come
        // out in one copy into one buffer, each frame a view into it: one allocation per batch rather
        // than per frame, which is most of what a small frame costs a chip's heap.
        let end = r;
        let count = 0;
        let frames = 0;
        while (end !== w) {
          const len = ring.words[(end & mask) >> 2];
          const rec = 4 + ((len + 3) & ~3);
          if (((w - end) | 0) < rec) break; // the first pieces of a streamed frame
          // a bundle record counts its frames (BUNDLE_MARKER as an int32 is -2)
          frames += len >= 8 && ring.words[((end + 4) & mask) >> 2] === -2 ? ring.words[((end + 8) & mask) >> 2] : 1;
          end = (end + rec) | 0;
          count++;
        }
        if (count > 0) {
          const span = (end - r) | 0;
          const slab = new Uint8Array(span);
          const pos = r & mask;
          const first = Math.min(span, cap - pos);
          slab.set(data.subarray(pos, pos + first), 0);
          if (span > first) slab.set(data.subarray(0, span - first), first);
          for (let off = 0; off < span;) {
            const len = u32(slab, off);
            this.enqueue(slab.subarray(off + 4, off + 4 + len), ring.peer);
            off += 4 + ((len + 3) & ~3);
          }
          this.taken += frames;
          got += frames;
          r = end;
        }
      }
      while (r !== w) {
        let f = ring.partial;
        if (f === null) {
          f = new Uint8Array(ring.words[(r & mask) >> 2]);
          r = (r + 4) | 0;
          ring.partial = f;
          ring.filled = 0;
        }
        const n = Math.min(f.length - ring.filled, (w - r) | 0);
        if (n > 0) {
          const pos = r & mask;
          const first = Math.min(n, cap - pos);
          f.set(data.subarray(pos, pos + first), ring.filled);
          if (n > first) f.set(data.subarray(0, n - first), ring.filled + first);
          ring.filled += n;
          r = (r + n) | 0;
        }
        if (ring.filled === f.length) {
          r = (r + 3) & ~3;
          ring.partial = null;
          this.enqueue(f, ring.peer);
          const frames = isBundle(f) ? bundleCount(f) : 1;
          this.taken += frames;
          got += frames;
        }
      }
      ring.r = r;
      Atomics.store(ring.hdr, R, r);
      if (Atomics.load(ring.hdr, WAITING) !== 0) {
        Atomics.store(ring.hdr, WAITING, 0);
        this.ringDoorbell(ring.peerBell, false);
      }
    }
    return got;
  }

  /** The sender gave up in the middle of a frame (sendFailed): nothing more can come through this ring. */
  private inboundBroken(ring: InRing): void {
    ring.dead = true;
    ring.partial = null;
    const message = `${ring.peer} gave up sending a frame to ${this.chipId} half-way: the rest of its frames are lost`;
    const details = { src: ring.peer, dst: this.chipId };
    this.delivery.report(new TransportError('RACKEMU_ERR_TRANSPORT', message, { details }));
  }

  private enqueue(f: Uint8Array, src: string): void {
    this.queue[this.tail] = f;
    this.queueSrc[this.tail] = src;
    this.tail++;
  }

  /** Collect, then deliver everything queued to the handler. Returns the number of frames delivered. */
  private drain(): number {
    this.collect();
    const delivery = this.delivery;
    if (delivery.frameHandler === undefined) return 0; // until onFrame, frames wait here, in the queue
    let n = 0;
    // Handlers may send (which may collect more into the queue) or poll (nested drain): both only
    // append or advance `head`, so the loop re-reads the fields every time.
    while (this.head < this.tail && !this.closed) {
      const i = this.head++;
      const f = this.queue[i]!;
      const src = this.queueSrc[i]!;
      this.queue[i] = undefined;
      this.queueSrc[i] = undefined;
      if (isBundle(f)) {
        n += this.deliverBundle(f, src);
      } else {
        delivery.frame(f, src);
        n++;
      }
    }
    if (this.head === this.tail && this.head > 0) {
      // emptied: start over at 0 without shrinking the arrays (regrowing them is garbage per batch)
      this.head = 0;
      this.tail = 0;
    }
    return n;
  }

  private hasData(): boolean {
    if (this.head < this.tail) return true;
    for (const ring of this.in) if (!ring.dead && Atomics.load(ring.hdr, W) !== ring.r) return true;
    return false;
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      if (!this.closed) this.drain();
    });
  }

  /** (Re)start the async delivery loop: one pending waitAsync on ASYNC, producers told to bump it. */
  private rearm(): void {
    if (this.closed || this.delivery.frameHandler === undefined || this.pollOnly) return;
    const b = this.bells;
    Atomics.store(b, this.me + ARMED, 1);
    if (!this.asyncWaiting) {
      const res = waitAsync!(b, this.me + ASYNC, Atomics.load(b, this.me + ASYNC));
      if (res.async) {
        this.asyncWaiting = true;
        void res.value.then(() => {
          this.asyncWaiting = false;
          this.onWake();
        });
      } else {
        // ASYNC moved between the load and the wait: something arrived; drain, then wait again.
        setImmediate(() => this.onWake());
      }
    }
    // Frames published before ARMED was visible rang no async bell.
    if (this.hasData()) this.scheduleDrain();
  }

  private onWake(): void {
    if (this.closed) return;
    // Producers need not bump ASYNC while we drain anyway.
    Atomics.store(this.bells, this.me + ARMED, 0);
    this.drain();
    this.rearm();
  }

  /**
   * pollSync's thread runs synchronously: stop async wake-ups (each would cost the producer an event
   * loop task post) until this thread is back in its event loop.
   */
  private suspendAsync(): void {
    if (this.pollOnly) return;
    Atomics.store(this.bells, this.me + ARMED, 0);
    if (this.rearmScheduled) return;
    this.rearmScheduled = true;
    setImmediate(() => {
      this.rearmScheduled = false;
      this.rearm();
    }).unref();
  }

  /**
   * A bundle goes whole to the bundle handler if it takes it, else frame by frame to the frame handler
   * (stopping if a handler closes the endpoint, as drain does). Returns its frames.
   */
  private deliverBundle(bundle: Uint8Array, src: string): number {
    const delivery = this.delivery;
    if (delivery.takeBundle(bundle, src)) return bundleCount(bundle);
    const frames = bundleFrames(bundle, delivery.report);
    for (let i = 0; i < frames.length && !this.closed; i++) delivery.frame(frames[i], src);
    return frames.length;
  }
}
