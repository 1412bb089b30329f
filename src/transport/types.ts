/**
 * What a chip sees of the transport. The runtime only ever holds a ChipEndpoint; which transport is
 * behind it (embedded MessagePorts, NATS) is decided by the TransportConfig handed to the chip's worker.
 *
 * Guarantees every transport gives:
 * - per (src, dst) pair, frames arrive exactly once and in send order while the endpoints are open and
 *   no error has been reported (anything else shows up through onError, and the frame's seq lets the
 *   runtime see it as a gap or duplicate);
 * - a frame is delivered whole (transports chunk and reassemble internally), as the same bytes;
 * - send never blocks and never throws in normal operation: what the transport cannot hand off at once
 *   waits in a per-destination queue under credit flow control.
 */

import type { MessagePort } from 'node:worker_threads';
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
   * open -> stalled transition counts once, however many frames then wait). Always 0 for embedded.
   */
  creditStalls: number;
  /** Transport messages (frames or chunks) waiting for credit right now, over all destinations. */
  queued: number;
  /** Largest number of un-acknowledged messages ever in flight to one destination (<= window.frames). */
  maxInFlight: number;
}

export type FrameHandler = (frame: Uint8Array, src: string) => void;
export type ErrorHandler = (err: TransportError) => void;

export interface ChipEndpoint {
  readonly chipId: string;
  readonly kind: TransportKind;
  /**
   * Send one encoded frame to chip `dst`. Ownership of `frame` passes to the transport: the embedded
   * transport transfers (detaches) its ArrayBuffer, NATS keeps a reference until the bytes are written,
   * so the caller must neither reuse nor mutate it. Throws TransportError RACKEMU_ERR_TRANSPORT_CONFIG
   * only for a destination this endpoint can never reach (an invalid chip id, an embedded pair missing
   * from the schedule's pair list): a set-up bug, not a run-time condition.
   */
  send(dst: string, frame: Uint8Array): void;
  /**
   * Register the (single) frame handler. Frames that arrive before registration wait and are delivered
   * in order once it is set. `frame` is owned by the handler; `src` is the sending chip's id.
   */
  onFrame(handler: FrameHandler): void;
  /**
   * Register the error handler: connection loss, server errors, malformed chunks, a frame handler that
   * threw. Errors raised before registration are kept and delivered on registration.
   */
  onError(handler: ErrorHandler): void;
  /**
   * Resolves when everything sent so far has left this endpoint: queues drained (which needs the
   * receivers' credit) and, for NATS, the server has acknowledged the bytes (a PING/PONG round trip).
   * It does not wait for the receivers' handlers to run.
   */
  flush(): Promise<void>;
  /**
   * Stop sending and receiving and release the connection/ports. Frames still waiting for credit are
   * discarded and reported through onError: call flush() first for an orderly end.
   */
  close(): Promise<void>;
  stats(): TransportStats;
}

/**
 * Embedded: for chips that are threads of one process. One MessagePort per peer, made by
 * createEmbeddedFabric in the thread that spawns the workers. Pass it in workerData and list
 * `transferList` (from the fabric) in the Worker options; it cannot cross a process boundary.
 */
export interface EmbeddedTransportConfig {
  readonly kind: 'embedded';
  /** The chip these ports belong to; openEndpoint checks it. */
  readonly chipId: string;
  /** Peer chip id -> the port whose other end that peer holds. */
  readonly ports: Readonly<Record<string, MessagePort>>;
}

/** NATS: plain JSON, shared by every chip of a run, in threads, processes or on other machines. */
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
}

export type TransportConfig = EmbeddedTransportConfig | NatsTransportConfig;

export interface OpenEndpointOptions {
  /** Error handler to install before the endpoint starts receiving. */
  readonly onError?: ErrorHandler;
  /** Connection name shown by the NATS server (default "rackemu <runId> <chipId>"). */
  readonly name?: string;
}

export const DEFAULT_WINDOW_FRAMES = 128;
export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024;
