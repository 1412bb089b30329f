/**
 * Embedded transport: chips that are threads of one process talk through shared memory.
 *
 * The spawning thread (createEmbeddedFabric) allocates, for every directed chip pair (src -> dst) the
 * schedule uses, a single-producer/single-consumer byte ring in its own SharedArrayBuffer, and one
 * doorbell slot per chip in a fabric-wide SharedArrayBuffer. A SharedArrayBuffer is shared, not copied,
 * when structured-cloned, so a chip's config simply travels in workerData / postMessage.
 *
 * A frame costs one copy into the ring (send), one copy out (delivery: the frames that are in the ring
 * when the receiver collects it come out in one buffer, each frame a view into it that the handler
 * owns), and a doorbell bump; a futex wake only when the receiver is asleep.
 *
 * Ring layout (one SharedArrayBuffer per directed pair; capacity a power of two):
 *   Int32 words of the header (each index on its own 64-byte line):
 *     [0]  W        write index: free-running byte counter (int32, wraps), published by the producer
 *     [16] R        read index: free-running byte counter, published by the consumer
 *     [32] WAITING  1 while the producer waits for space (the consumer rings the producer's doorbell)
 *     [33] CLOSED   1 once the consumer's endpoint closed (the producer then drops frames)
 *     [34] BROKEN   1 if the producer gave up in the middle of a frame (send timeout)
 *   data area from byte 192: a byte stream of records [int32 length][length bytes][pad to 4]. A
 *   record is one frame, or one bundle from sendBundle (bundle.ts), told apart by the bundle marker
 *   that no frame starts with; the doorbell's frame counts count a bundle's frames.
 * Records are 4-byte aligned, so a length word never straddles the end of the data area; the bytes of a
 * frame may (they are copied in two pieces). There are no wrap markers and no size limit: a record that
 * fits in the ring waits for room and is written whole; a longer frame is streamed through the ring, the
 * producer publishing what fits and waiting for the consumer to take it, the consumer assembling it into
 * the frame's own buffer.
 * (Streaming rather than growing the ring: a SharedArrayBuffer cannot be grown or swapped for a bigger
 * one without a side channel to the other thread, and streaming needs no second code path.)
 *
 * Doorbell slot (16 Int32 words per chip, one 64-byte line):
 *     [0] SEQ    bumped after every publish to the chip, and when a ring the chip waits on gets space
 *     [1] SLEEP  1 while the chip's thread blocks in Atomics.wait on SEQ (bumpers then Atomics.notify)
 *     [2] ARMED  1 while the chip's async delivery loop waits (Atomics.waitAsync) on ASYNC
 *     [3] ASYNC  bumped (and notified) by producers only while ARMED
 *     [4] FRAMES complete frames published to the chip, by all producers (free-running)
 *     [5] WANT   while SLEEP: the FRAMES count the sleeper waits for; a producer that publishes a whole
 *                frame wakes it only once FRAMES reaches WANT (a sleeper that takes any frame sets
 *                WANT one past the frames it has taken)
 * SEQ and ASYNC are separate addresses so a thread that runs synchronously (pollSync) is not sent
 * event-loop tasks for every frame: waking a waitAsync goes through the event loop, which is exactly
 * what pollSync avoids. FRAMES/WANT make a wake-up count: a chip that needs five frames before it can
 * go on sleeps through the first four. Waking a sleeping thread is the dearest thing the emulator
 * does (tens of microseconds with hundreds of V8 isolates on a few cores, against ~1.5 us to move a
 * frame), so it is done once per group of frames rather than once per frame. Every flag handshake is
 * store-then-load on both sides with sequentially consistent Atomics, so no wake-up is lost.
 *
 * Back-pressure instead of credit: send copies into the ring at once when it has room; when it has not,
 * send blocks the calling thread (Atomics.wait, in 50 ms slices) until the consumer has made room, up to
 * sendTimeoutMs (default 60 s), then reports a TransportError through onError and drops the frame.
 * No deadlock by design: while blocked, the sender keeps collecting its own inbound rings into a private
 * queue (without running the frame handler), so two chips blocked sending to each other both progress;
 * and a consumer that lives in the same thread as the blocked sender is collected directly.
 */

import { randomUUID } from 'node:crypto';
import type { MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { TransportError } from '../util/errors.js';
import { ErrorRelay } from './error-relay.js';
import { bundleCount, bundleFrameBytes, bundleFrames, isBundle, offerBundle } from './bundle.js';
import type { BundleHandler, ChipEndpoint, EmbeddedTransportConfig, ErrorHandler, FrameHandler, TransportStats } from './types.js';

export const DEFAULT_RING_BYTES = 256 * 1024;
export const MIN_RING_BYTES = 1024;
export const MAX_RING_BYTES = 1 << 30;
export const DEFAULT_SEND_TIMEOUT_MS = 60_000;

/** Ring header, Int32 word indices. */
const W = 0;
const R = 16;
const WAITING = 32;
const CLOSED = 33;
const BROKEN = 34;
const RING_HEADER_BYTES = 192;

/** Doorbell slot, Int32 word offsets within a chip's slot. */
const SLOT_WORDS = 16;
const SEQ = 0;
const SLEEP = 1;
const ARMED = 2;
const ASYNC = 3;
const FRAMES = 4;
const WANT = 5;

/** Longest single Atomics.wait of a blocked sender (it re-checks its state in between). */
const SEND_WAIT_SLICE_MS = 50;

export interface EmbeddedFabricOptions {
  /**
   * Data bytes of each directed ring (rounded up to a power of two, within [1 KiB, 1 GiB]); a number
   * for all rings or a function of the pair, e.g. sized from the schedule's largest frame per pair.
   * Default 256 KiB. Frames larger than a ring still pass (streamed), but then sender and receiver
   * take turns, so a ring that holds a step's traffic for the pair avoids stalls.
   */
  readonly ringBytes?: number | ((src: string, dst: string) => number);
  /** How long a send may block on a full ring before it reports an error and drops the frame (default 60 s). */
  readonly sendTimeoutMs?: number;
}

export interface EmbeddedFabric {
  /** Every chip that has a config (those named in pairs or in `chips`). */
  readonly chips: readonly string[];
  /**
   * The config for one chip (each chip's config can be taken once). It holds SharedArrayBuffers only,
   * which structured clone shares: pass it in workerData or a message as is, or to openEndpoint in this
   * thread. `transferList` is always empty (kept so callers need not change).
   */
  endpointConfig(chipId: string): { config: EmbeddedTransportConfig; transferList: MessagePort[] };
}

function configError(message: string, details: Record<string, unknown> = {}): TransportError {
  return new TransportError('RACKEMU_ERR_TRANSPORT_CONFIG', message, { details });
}

function ringCapacity(bytes: number, src: string, dst: string): number {
  if (!Number.isFinite(bytes) || bytes <= 0) throw configError(`embedded ring size for ${src} -> ${dst} must be a positive number of bytes, got ${bytes}`, { src, dst, got: bytes });
  let cap = MIN_RING_BYTES;
  while (cap < bytes && cap < MAX_RING_BYTES) cap *= 2;
  return cap;
}

/**
 * Build the shared memory for a run. `pairs` are the (src, dst) transfers the schedule uses (direction
 * and repeats do not matter: both directions get a ring; self-pairs need none); `chips` adds chips that
 * have no traffic.
 */
export function createEmbeddedFabric(
  pairs: Iterable<readonly [string, string]>,
  chips: Iterable<string> = [],
  options: EmbeddedFabricOptions = {},
): EmbeddedFabric {
  const sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
  if (!(sendTimeoutMs > 0)) throw configError(`embedded sendTimeoutMs must be > 0, got ${sendTimeoutMs}`, { got: sendTimeoutMs });
  const sizeOf = (src: string, dst: string): number => {
    const rb = options.ringBytes;
    return ringCapacity(typeof rb === 'function' ? rb(src, dst) : (rb ?? DEFAULT_RING_BYTES), src, dst);
  };
  const outbound = new Map<string, Record<string, SharedArrayBuffer>>();
  const inbound = new Map<string, Record<string, SharedArrayBuffer>>();
  const ensure = (c: string): void => {
    if (outbound.has(c)) return;
    outbound.set(c, Object.create(null) as Record<string, SharedArrayBuffer>);
    inbound.set(c, Object.create(null) as Record<string, SharedArrayBuffer>);
  };
  for (const c of chips) ensure(c);
  for (const [a, b] of pairs) {
    ensure(a);
    ensure(b);
    if (a === b) continue;
    for (const [src, dst] of [
      [a, b],
      [b, a],
    ] as const) {
      const out = outbound.get(src)!;
      if (out[dst] !== undefined) continue;
      const ring = new SharedArrayBuffer(RING_HEADER_BYTES + sizeOf(src, dst));
      out[dst] = ring;
      inbound.get(dst)![src] = ring;
    }
  }
  const ids = [...outbound.keys()];
  const slotOf = new Map(ids.map((c, i) => [c, i]));
  const doorbells = new SharedArrayBuffer(Math.max(1, ids.length) * SLOT_WORDS * 4);
  const fabricId = randomUUID();
  const taken = new Set<string>();
  return {
    chips: ids,
    endpointConfig(chipId: string) {
      const out = outbound.get(chipId);
      if (out === undefined) throw configError(`chip ${chipId} is not part of this embedded fabric`, { chipId });
      if (taken.has(chipId)) throw configError(`the embedded config of chip ${chipId} was already handed out`, { chipId });
      taken.add(chipId);
      const inb = inbound.get(chipId)!;
      const slots: Record<string, number> = Object.create(null) as Record<string, number>;
      for (const c of [chipId, ...Object.keys(out), ...Object.keys(inb)]) slots[c] = slotOf.get(c)!;
      const config: EmbeddedTransportConfig = { kind: 'embedded', chipId, fabricId, doorbells, slots, outbound: out, inbound: inb, sendTimeoutMs };
      return { config, transferList: [] };
    },
  };
}

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync?: (ta: Int32Array, index: number, value: number, timeout?: number) => WaitAsyncResult }).waitAsync;

/** Endpoints of this thread, by fabric and chip: a blocked sender collects a same-thread receiver directly. */
const localEndpoints = new Map<string, EmbeddedEndpoint>();

interface Ring {
  readonly peer: string;
  readonly hdr: Int32Array;
  readonly data: Uint8Array;
  readonly words: Int32Array;
  readonly mask: number;
  readonly cap: number;
  /** The peer's doorbell slot (word offset). */
  readonly peerBell: number;
}

interface OutRing extends Ring {
  /** Write index (this side owns it): the end of what is written, published or held (cork). */
  w: number;
  /** Whole frames written after the published write index, held back while corked. */
  held: number;
  /** Last read index seen. */
  r: number;
  broken: boolean;
}

interface InRing extends Ring {
  /** Read index (this side owns it). */
  r: number;
  /** The frame being assembled (its bytes arrive in pieces when it is larger than the free space). */
  partial: Uint8Array | null;
  filled: number;
  dead: boolean;
}

function ringParts(sab: SharedArrayBuffer, peer: string, peerBell: number): Ring {
  const cap = sab.byteLength - RING_HEADER_BYTES;
  return {
    peer,
    hdr: new Int32Array(sab, 0, RING_HEADER_BYTES >> 2),
    data: new Uint8Array(sab, RING_HEADER_BYTES, cap),
    words: new Int32Array(sab, RING_HEADER_BYTES, cap >> 2),
    mask: cap - 1,
    cap,
    peerBell,
  };
}

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
  private readonly errors = new ErrorRelay();
  private handler: FrameHandler | undefined;
  private bundleHandler: BundleHandler | undefined;
  private readonly report = (e: TransportError): void => this.errors.report(e);
  /** Frames collected and not yet delivered (and their senders), in arrival order: [head, tail). The arrays keep their capacity when emptied. */
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
  private framesReceived = 0;
  private bytesReceived = 0;
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
      throw configError(`embedded config of ${config.chipId} is malformed (no shared doorbells): it must come from createEmbeddedFabric`, { chipId: config.chipId });
    }
    if (waitAsync === undefined) throw configError('the embedded transport needs Atomics.waitAsync (Node >= 16)');
    this.chipId = config.chipId;
    this.fabricId = config.fabricId;
    this.key = `${config.fabricId}\u0000${config.chipId}`;
    this.bells = new Int32Array(config.doorbells);
    this.me = config.slots[config.chipId] * SLOT_WORDS;
    this.sendTimeoutMs = config.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    if (onError) this.errors.setHandler(onError);
    const bellOf = (peer: string): number => config.slots[peer] * SLOT_WORDS;
    for (const [peer, sab] of Object.entries(config.outbound)) this.out.set(peer, { ...ringParts(sab, peer, bellOf(peer)), w: 0, r: 0, held: 0, broken: false });
    for (const [peer, sab] of Object.entries(config.inbound)) this.in.push({ ...ringParts(sab, peer, bellOf(peer)), r: 0, partial: null, filled: 0, dead: false });
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
      this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `send to ${dst} after close`, { details: { src: this.chipId, dst } }));
      return;
    }
    const ring = this.out.get(dst);
    if (ring === undefined) {
      if (dst === this.chipId) {
        // Loopback: a copy, delivered asynchronously (or by the next pollSync) like any other frame.
        this.enqueue(frame.slice(), dst);
        if (this.handler !== undefined && !this.pollOnly) this.scheduleDrain();
        return;
      }
      throw configError(`no embedded ring from ${this.chipId} to ${dst}: the pair was not in the fabric's pair list`, { src: this.chipId, dst });
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
    const first = this.handler === undefined;
    this.handler = handler;
    if (!first || this.closed || this.pollOnly) return;
    // Like a port with a message listener (or a NATS socket), an endpoint that receives keeps its
    // thread alive until close().
    this.keepAlive = setInterval(() => undefined, 0x7fffffff);
    this.rearm();
  }

  onBundle(handler: BundleHandler): void {
    this.bundleHandler = handler;
  }

  onError(handler: ErrorHandler): void {
    this.errors.setHandler(handler);
  }

  /**
   * Block this thread until at least `atLeast` frames have been delivered by this call (or timeoutMs
   * passes), delivering every available frame to the handler, synchronously. Returns how many were
   * delivered. Producers wake the thread only once enough whole frames are waiting (FRAMES/WANT).
   */
  pollSync(timeoutMs: number, atLeast = 1): number {
    if (this.handler === undefined) throw configError(`pollSync on ${this.chipId} before onFrame: register the frame handler first`, { chipId: this.chipId });
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
      if (Atomics.load(ring.hdr, WAITING) !== 0) this.ring(ring.peerBell, true);
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
      framesReceived: this.framesReceived,
      bytesReceived: this.bytesReceived,
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
    this.ring(ring.peerBell, true, frames > 0 ? Atomics.add(this.bells, ring.peerBell + FRAMES, frames) + frames : undefined);
  }

  /**
   * Bump a chip's doorbell; wake its thread if it sleeps and, if `async`, its async loop if armed.
   * With `frames` (the FRAMES count after publishing a whole frame), the thread is woken only if that
   * reaches the count it waits for (WANT); without, whatever it waits for (a frame's first pieces, a
   * ring it sends on got room, a ring broke).
   */
  private ring(bell: number, async: boolean, frames?: number): void {
    const b = this.bells;
    Atomics.add(b, bell + SEQ, 1);
    if (Atomics.load(b, bell + SLEEP) !== 0 && (frames === undefined || ((frames - Atomics.load(b, bell + WANT)) | 0) >= 0)) Atomics.notify(b, bell + SEQ);
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
      this.ring(ring.peerBell, true);
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
      this.ring(ring.peerBell, true);
    }
    this.errors.report(
      new TransportError(
        'RACKEMU_ERR_TRANSPORT',
        `send from ${this.chipId} to ${ring.peer} timed out after ${this.sendTimeoutMs} ms: the receiver's ring stayed full (is it still running?); ${midFrame ? 'the ring is now unusable' : 'the frame was dropped'}`,
        { details: { src: this.chipId, dst: ring.peer, frameBytes: len, ringBytes: ring.cap } },
      ),
    );
  }

  /** Move every complete record (frame or bundle) out of the inbound rings into the queue (no handler runs); returns the frames. */
  private collect(): number {
    let got = 0;
    for (const ring of this.in) {
      if (ring.dead) continue;
      const w = Atomics.load(ring.hdr, W);
      let r = ring.r;
      if (r === w) {
        if (ring.partial !== null && Atomics.load(ring.hdr, BROKEN) !== 0) {
          ring.dead = true;
          ring.partial = null;
          this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `${ring.peer} gave up sending a frame to ${this.chipId} half-way: the rest of its frames are lost`, { details: { src: ring.peer, dst: this.chipId } }));
        }
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
          for (let off = 0; off < span; ) {
            const len = (slab[off] | (slab[off + 1] << 8) | (slab[off + 2] << 16) | (slab[off + 3] << 24)) >>> 0;
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
        this.ring(ring.peerBell, false);
      }
    }
    return got;
  }

  private enqueue(f: Uint8Array, src: string): void {
    this.queue[this.tail] = f;
    this.queueSrc[this.tail] = src;
    this.tail++;
  }

  /** Collect, then deliver everything queued to the handler. Returns the number of frames delivered. */
  private drain(): number {
    this.collect();
    if (this.handler === undefined) return 0;
    let n = 0;
    // Handlers may send (which may collect more into the queue) or poll (nested drain): both only
    // append or advance `head`, so the loop re-reads the fields every time.
    while (this.head < this.tail && !this.closed) {
      const i = this.head++;
      const f = this.queue[i]!;
      const src = this.queueSrc[i]!;
      this.queue[i] = undefined;
      this.queueSrc[i] = undefined;
      n += isBundle(f) ? this.deliverBundle(f, src) : this.deliver(f, src);
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
    if (this.closed || this.handler === undefined || this.pollOnly) return;
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

  private deliver(frame: Uint8Array, src: string): number {
    this.framesReceived++;
    this.bytesReceived += frame.length;
    try {
      this.handler!(frame, src);
    } catch (e) {
      this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `frame handler of ${this.chipId} threw on a frame from ${src}`, { cause: e, details: { src, dst: this.chipId } }));
    }
    return 1;
  }

  /** A bundle goes whole to the bundle handler if it takes it, else frame by frame to the frame handler. Returns its frames. */
  private deliverBundle(bundle: Uint8Array, src: string): number {
    if (offerBundle(this.bundleHandler, bundle, src, this.chipId, this.report)) {
      const n = bundleCount(bundle);
      this.framesReceived += n;
      this.bytesReceived += bundleFrameBytes(bundle);
      return n;
    }
    const frames = bundleFrames(bundle, this.report);
    for (let i = 0; i < frames.length && !this.closed; i++) this.deliver(frames[i], src);
    return frames.length;
  }
}

/** Copy n bytes of src (from off) into the ring at stream position w, in two pieces if they wrap. */
function put(ring: Ring, w: number, src: Uint8Array, off: number, n: number): void {
  if (n === 0) return;
  const pos = w & ring.mask;
  const first = Math.min(n, ring.cap - pos);
  ring.data.set(first === src.length && off === 0 ? src : src.subarray(off, off + first), pos);
  if (n > first) ring.data.set(src.subarray(off + first, off + n), 0);
}
