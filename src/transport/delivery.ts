/**
 * The receiving side both transports share: the frame and bundle handlers, the error relay, and the
 * count of what reached the handlers. A transport decides when a frame is delivered (embedded: when a
 * ring is collected; NATS: as messages come off the socket); this decides how.
 */

import { TransportError } from '../util/errors.js';
import { bundleCount, bundleFrameBytes } from './bundle.js';
import { ErrorRelay } from './error-relay.js';
import type { BundleHandler, ErrorHandler, FrameHandler } from './types.js';

export class Delivery {
  frameHandler: FrameHandler | undefined;
  bundleHandler: BundleHandler | undefined;
  readonly errors = new ErrorRelay();
  /** errors.report as a function of its own (one per endpoint), for callbacks such as bundleFrames'. */
  readonly report = (e: TransportError): void => this.errors.report(e);
  /** Frames delivered: to the frame handler, or inside a bundle the bundle handler took. */
  framesReceived = 0;
  bytesReceived = 0;

  constructor(
    private readonly chipId: string,
    onError?: ErrorHandler,
  ) {
    if (onError) this.errors.setHandler(onError);
  }

  /** Give one frame to the frame handler, which the caller knows is set; a handler that throws is reported. */
  frame(frame: Uint8Array, src: string): void {
    this.framesReceived++;
    this.bytesReceived += frame.length;
    try {
      this.frameHandler!(frame, src);
    } catch (e) {
      const message = `frame handler of ${this.chipId} threw on a frame from ${src}`;
      this.errors.report(this.handlerError(message, e, src));
    }
  }

  /**
   * Offer a received bundle to the bundle handler: true if it took the bundle whole (its frames then
   * count as delivered). A handler that throws breaks its contract: that is reported, and the bundle is
   * treated as declined (the caller then delivers its frames one by one, so none is lost).
   */
  takeBundle(bundle: Uint8Array, src: string): boolean {
    const handler = this.bundleHandler;
    if (handler === undefined) return false;
    try {
      if (!handler(bundle, src)) return false;
    } catch (e) {
      const message = `bundle handler of ${this.chipId} threw on a bundle from ${src}`;
      this.errors.report(this.handlerError(message, e, src));
      return false;
    }
    this.framesReceived += bundleCount(bundle);
    this.bytesReceived += bundleFrameBytes(bundle);
    return true;
  }

  private handlerError(message: string, cause: unknown, src: string): TransportError {
    return new TransportError('RACKEMU_ERR_TRANSPORT', message, { cause, details: { src, dst: this.chipId } });
  }
}
