/**
 * The shared memory of the embedded transport (embedded-fabric.ts allocates it, embedded.ts uses it).
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
 */

/** Ring header, Int32 word indices. */
export const W = 0;
export const R = 16;
export const WAITING = 32;
export const CLOSED = 33;
export const BROKEN = 34;
export const RING_HEADER_BYTES = 192;

/** Doorbell slot, Int32 word offsets within a chip's slot. */
export const SLOT_WORDS = 16;
export const SEQ = 0;
export const SLEEP = 1;
export const ARMED = 2;
export const ASYNC = 3;
export const FRAMES = 4;
export const WANT = 5;

export interface Ring {
  readonly peer: string;
  readonly hdr: Int32Array;
  readonly data: Uint8Array;
  readonly words: Int32Array;
  readonly mask: number;
  readonly cap: number;
  /** The peer's doorbell slot (word offset). */
  readonly peerBell: number;
}

export interface OutRing extends Ring {
  /** Write index (this side owns it): the end of what is written, published or held (cork). */
  w: number;
  /** Whole frames written after the published write index, held back while corked. */
  held: number;
  /** Last read index seen. */
  r: number;
  broken: boolean;
}

export interface InRing extends Ring {
  /** Read index (this side owns it). */
  r: number;
  /** The frame being assembled (its bytes arrive in pieces when it is larger than the free space). */
  partial: Uint8Array | null;
  filled: number;
  dead: boolean;
}

export function ringParts(sab: SharedArrayBuffer, peer: string, peerBell: number): Ring {
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

/** Copy n bytes of src (from off) into the ring at stream position w, in two pieces if they wrap. */
export function put(ring: Ring, w: number, src: Uint8Array, off: number, n: number): void {
  if (n === 0) return;
  const pos = w & ring.mask;
  const first = Math.min(n, ring.cap - pos);
  ring.data.set(first === src.length && off === 0 ? src : src.subarray(off, off + first), pos);
  if (n > first) ring.data.set(src.subarray(off + first, off + n), 0);
}
