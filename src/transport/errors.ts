/** The transport's coded errors that more than one module raises. */

import { TransportError } from '../util/errors.js';

/** RACKEMU_ERR_TRANSPORT_CONFIG: a set-up bug (bad config, unknown destination, misuse of an endpoint). */
export function configError(message: string, details: Record<string, unknown> = {}): TransportError {
  return new TransportError('RACKEMU_ERR_TRANSPORT_CONFIG', message, { details });
}

/** RACKEMU_ERR_FRAME: bytes that are not a valid frame, bundle or chunk, or a header that contradicts itself. */
export function frameError(message: string, details: Record<string, unknown> = {}, cause?: unknown): TransportError {
  return new TransportError('RACKEMU_ERR_FRAME', message, { details, cause });
}
