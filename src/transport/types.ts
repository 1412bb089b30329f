/**
 * What a chip sees of the transport. The runtime only ever holds a ChipEndpoint; which transport is
 * behind it (embedded shared-memory rings, NATS) is decided by the TransportConfig handed to the chip's worker.
 *
 * Guarantees every transport gives:
 * - per (src, dst) pair, frames arrive exactly once and in send order while the endpoints are open and
 *   no error has been reported (anything else shows up through onError, and the frame's seq lets the
 *   runtime see it as a gap or duplicate);
 * - a frame is delivered whole (transports chunk and reassemble internally), as the same bytes;
 * - send never throws in normal operation. NATS never blocks: what it cannot hand off at once waits in a
 *   per-destination queue under credit flow control. Embedded has no queue: send copies the frame into
 *   the destination's shared-memory ring and blocks the calling thread while that ring is full (the
 *   receiver drains it whenever it polls, receives asynchronously, or is itself blocked in a send), up to
 *   a time limit after which the frame is dropped and reported through onError.
 */

import type { TransportError } from '../util/errors.js';

export type TransportKind = 'embedded' | 'nats';

export interface TransportStats {
  /** Frames handed to send(). */
  framesSent: number;
  /** Bytes of those frames (encoded length). */
  bytesSent: number;
  /** Whole frames delivered to the onFrame handler. */
  framesReceived: number;
  bytesReceived: number;
  /**
   * Times a destination ran out of credit while this endpoint had something to send to it (each
   * open -> stalled transition counts once, however many frames then wait). Embedded: sends that found
   * the destination's ring without room for the whole frame (and streamed or waited).
   */
  creditStalls: number;
  /**
   * Times this endpoint put its thread to sleep (embedded: Atomics.wait in pollSync or on a full ring).
   * Waking a sleeping thread costs far more than moving a frame, so this is the figure to watch.
   * 0 for NATS, whose endpoints wait on the event loop.
   */
  sleeps: number;
  /**
   * Transport messages that left this endpoint: NATS publishes (a frame, a chunk, or a bundle of corked
   * frames each count one); embedded ring publishes (a corked batch to one destination counts one).
   */
  messagesSent: number;
  /** Transport messages (frames or chunks) waiting for credit right now, over all destinations (0 for embedded). */
  queued: number;
  /**
   * Largest number of un-acknowledged messages ever in flight to one destination (<= window.frames; 0 for embedded).
   */
  maxInFlight: number;
}

export type FrameHandler = (frame: Uint8Array, src: string) => void;
/**
 * Sees a bundle (bundle.ts layout: several frames of one sender) before its frames are delivered, and
 * returns true if it took the bundle whole; then its frames are not delivered one by one. `bundle` is
 * valid only during the call (the handler copies what it keeps). It must not throw.
 */
export type BundleHandler = (bundle: Uint8Array, src: string) => boolean;
export type ErrorHandler = (err: TransportError) => void;

export interface ChipEndpoint {
  readonly chipId: string;
  readonly kind: TransportKind;
  /**
   * Send one encoded frame to chip `dst`. Ownership of `frame` passes to the transport: NATS keeps a
   * reference until the bytes are written, so the caller must neither reuse nor mutate it (the embedded
   * transport copies it into shared memory before returning and leaves the caller's buffer intact, but
   * callers should not rely on that). Throws TransportError RACKEMU_ERR_TRANSPORT_CONFIG
   * only for a destination this endpoint can never reach (an invalid chip id, an embedded pair missing
   * from the schedule's pair list): a set-up bug, not a run-time condition.
   */
  send(dst: string, frame: Uint8Array): void;
  /**
   * Like send, but the caller keeps `frame` and may reuse it at once: the transport copies what it
   * keeps before returning. A sender can then encode every frame into one scratch buffer. Embedded:
   * the same as send (it copies into the ring anyway); NATS: one copy.
   */
  sendCopy(dst: string, frame: Uint8Array): void;
  /**
   * Send several frames to `dst` as one bundle built by the caller (bundle.ts layout; not checked): one
   * transport message, the frames in bundle order after everything sent before. The caller keeps
   * `bundle` and may reuse it at once (the transport copies it, as sendCopy). Stats count its frames.
   * A receiver's onBundle handler may take it whole; otherwise its frames reach onFrame one by one,
   * so receivers that only set onFrame see the same frames either way. While corked, frames already
   * held for `dst` leave first (order is kept); the bundle itself is not merged with others.
   */
  sendBundle(dst: string, bundle: Uint8Array): void;
  /**
   * Coalesce, like a corked Node stream: from cork() until uncork(), frames sent to one destination are
   * held and then leave together, in as few transport messages as the transport allows (embedded: one
   * ring publish and one wake-up per destination; NATS: bundles up to the message limit, bundle.ts).
   * Receivers see the same frames in the same order, one onFrame call each (a NATS bundle is first
   * offered to the receiver's bundle handler, if it has one: see onBundle). Held frames also leave on
   * flush(), close() and before the endpoint blocks its thread (pollSync, a full embedded ring), so a
   * corked endpoint never waits on frames it holds back. What it saves is per-message work: a chip
   * corks while it issues a burst of sends (timing fidelity: a whole look-ahead window's).
   */
  cork(): void;
  /** Send everything held since cork() and stop holding. */
  uncork(): void;
  /**
   * Register the (single) frame handler. Frames that arrive before registration wait and are delivered
   * in order once it is set. `frame` is owned by the handler (it may be a view into a larger buffer
   * that holds other frames delivered with it: a handler never writes outside its frame); `src` is
   * the sending chip's id.
   */
  onFrame(handler: FrameHandler): void;
  /**
   * Register the (single, optional) bundle handler: every bundle that arrives (from sendBundle, or a
   * corked NATS sender's) is offered to it before its frames go to onFrame one by one; if it returns
   * true, they do not. Lets a receiver that knows what a batch must hold check it in one comparison.
   */
  onBundle(handler: BundleHandler): void;
  /**
   * Register the error handler: connection loss, server errors, malformed chunks, a frame handler that
   * threw. Errors raised before registration are kept and delivered on registration.
   */
  onError(handler: ErrorHandler): void;
  /**
   * Synchronous receive (embedded only; NATS does not implement it): block the calling thread until at
   * least `atLeast` frames (default 1) have been delivered or `timeoutMs` has passed, delivering every
   * available frame to the onFrame handler, synchronously, before returning. Returns the number of
   * frames delivered (0 on timeout, or once closed). A caller that knows how many frames it needs
   * before it can go on says so, and the thread is woken once for them rather than once per frame.
   * Throws TransportError RACKEMU_ERR_TRANSPORT_CONFIG if no handler is set.
   * The chip runtime uses it to run its Program without returning to the event loop, which is what
   * costs the most per frame with hundreds of chip threads on a few cores. While a thread keeps polling
   * synchronously the endpoint's asynchronous delivery is suspended; it resumes (and delivers whatever
   * arrived meanwhile) once the thread is back in its event loop. Timers cannot fire during the wait.
   */
  pollSync?(timeoutMs: number, atLeast?: number): number;
  /**
   * Resolves when everything sent so far has left this endpoint: queues drained (which needs the
   * receivers' credit) and, for NATS, the server has acknowledged the bytes (a PING/PONG round trip).
   * It does not wait for the receivers' handlers to run.
   */
  flush(): Promise<void>;
  /**
   * Stop sending and receiving and release the connection (embedded: frames still in its inbound rings
   * are dropped, and peers drop what they send to it from then on). Frames still waiting for credit
   * are discarded and reported through onError: call flush() first for an orderly end.
   */
  close(): Promise<void>;
  stats(): TransportStats;
  /**
   * Forget flow-control state after messages were lost (a failed run, a reconnect): credit owed for
   * lost messages never comes back, so without this a destination could stay stalled. Messages waiting
   * for credit are sent. NATS only; the embedded transport loses nothing and has no credit.
   */
  resetFlow?(): void;
}

/**
 * Embedded: for chips that are threads of one process. Shared-memory rings (one per directed pair) and
 * doorbells, made by createEmbeddedFabric in the thread that spawns the workers (layout in embedded.ts).
 * It holds SharedArrayBuffers only, which structured clone shares rather than copies: pass it in
 * workerData or postMessage as is (no transfer list needed); it cannot cross a process boundary.
 */
export interface EmbeddedTransportConfig {
  readonly kind: 'embedded';
  /** The chip this config belongs to; openEndpoint checks it. */
  readonly chipId: string;
  /** Unique per fabric: endpoints of one fabric that share a thread find each other by it. */
  readonly fabricId: string;
  /** Every chip's doorbell slot (16 Int32 words each). */
  readonly doorbells: SharedArrayBuffer;
  /** Chip id -> doorbell slot index, for this chip and its peers. */
  readonly slots: Readonly<Record<string, number>>;
  /** Peer chip id -> the ring this chip writes (this chip -> peer). */
  readonly outbound: Readonly<Record<string, SharedArrayBuffer>>;
  /** Peer chip id -> the ring this chip reads (peer -> this chip). */
  readonly inbound: Readonly<Record<string, SharedArrayBuffer>>;
  /** How long a send may block on a full ring before it reports an error and drops the frame (ms). */
  readonly sendTimeoutMs?: number;
}

/**
 * Credentials every NATS connection of a run presents (the server's `authorization` block): a user and
 * password, a token, or an nkey user given by its seed (`SU...`; the connection signs the server's
 * nonce with it, the seed itself is never sent). A server that requires credentials refuses a
 * connection with missing or wrong ones: RACKEMU_ERR_NATS_AUTH. The secrets (pass, token, seed) never
 * appear in rackemu's messages or logs (nats-auth.ts describes credentials without them).
 */
export type NatsAuth =
  | { readonly kind: 'user'; readonly user: string; readonly pass: string }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'nkey'; readonly seed: string };

/**
 * NATS: plain JSON, shared by every chip of a run, in threads, processes or on other machines. With
 * `auth` it holds a secret: pass it to chips (workerData, IPC), never log or print it.
 */
export interface NatsTransportConfig {
  readonly kind: 'nats';
  /** Server URL(s), e.g. "nats://127.0.0.1:4222". */
  readonly servers: string | readonly string[];
  /** Run id: the subject namespace, so runs sharing a server never see each other's frames. [A-Za-z0-9-]+ */
  readonly runId: string;
  /**
   * Per-destination credit window: at most `frames` messages and `bytes` bytes un-acknowledged per
   * destination (a single message larger than `bytes` is still sent when nothing else is in flight).
   * Defaults 128 frames, 8 MiB — far below nats-server's 64 MiB slow-consumer limit even with several
   * senders per receiver, and a few round trips' worth on loopback.
   */
  readonly window?: { readonly frames?: number; readonly bytes?: number };
  /** Chunk above this many bytes even when the server allows more (min with the server's max_payload). */
  readonly maxPayload?: number;
  /** Connect timeout, ms (default 5000). */
  readonly connectTimeoutMs?: number;
  /**
   * Reconnect after a lost connection (default false): NATS core drops messages in flight across a
   * reconnect, which would break the no-loss guarantee silently, so by default the loss is an error.
   */
  readonly reconnect?: boolean;
  /** Credentials for a server that requires them (default none). */
  readonly auth?: NatsAuth;
}

export type TransportConfig = EmbeddedTransportConfig | NatsTransportConfig;

export interface OpenEndpointOptions {
  /** Error handler to install before the endpoint starts receiving. */
  readonly onError?: ErrorHandler;
  /**
   * Embedded only. 'async' (default): frames are delivered to the onFrame handler from the event loop
   * as they arrive, and by pollSync. 'poll': only by pollSync, for a thread that always polls (a chip):
   * frames wait in the rings meanwhile and never wake the thread's event loop. NATS ignores it.
   */
  readonly delivery?: 'async' | 'poll';
  /** Connection name shown by the NATS server (default "rackemu <runId> <chipId>"). */
  readonly name?: string;
}

export const DEFAULT_WINDOW_FRAMES = 128;
export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024;

/** Options of a control-plane NATS connection (openNatsBus). */
export interface NatsBusOptions {
  readonly servers: string | readonly string[];
  readonly auth?: NatsAuth;
  /** Connection name shown by the server, and the party named in connect errors. */
  readonly name: string;
  readonly connectTimeoutMs?: number;
}

/** The little of NATS the control plane uses: publish, subscribe, flush, close. */
export interface NatsBus {
  /** Largest message the server takes (control messages are chunked below it). */
  readonly maxPayload: number;
  /** `reply`: the reply subject the message carries (what a chip's frame carries: its sender's credit subject). */
  publish(subject: string, data: Uint8Array, reply?: string): void;
  /** Returns the unsubscribe. */
  subscribe(subject: string, onMessage: (data: Uint8Array) => void): () => void;
  flush(): Promise<void>;
  close(): Promise<void>;
}
