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
export const DEFAULT_WINDOW_FRAMES = 128;
export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024;
//# sourceMappingURL=types.js.map