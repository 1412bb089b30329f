/**
 * Bundles: several whole frames of one (src, dst) pair in one transport message, for a transport
 * whose cost is per message (NATS: a publish, a server routing decision, a socket write, a credit
 * share). A corked endpoint (ChipEndpoint.cork) sends what it held for a destination as bundles.
 *
 * Bundle layout (little-endian):
 *
 *   u32 0xFFFFFFFE   marker: no frame starts with it (a 4 GiB header) and chunks start 0xFFFFFFFF,
 *                    so frames, chunks and bundles share one subject
 *   u32 count        frames in the bundle (>= 1)
 *   count x u32      each frame's length
 *   0..7             zero padding to a multiple of 8
 *   frames           each frame's bytes, then zero padding to a multiple of 8
 *
 * Frames start at multiples of 8 from the bundle's start, so a frame keeps its payload alignment
 * (frame.ts) whenever the bundle does. A receiver hands out views into the bundle: no copy.
 */

import type { TransportError } from '../util/errors.js';
import { align8, putU32, u32 } from './bytes.js';
import { frameError } from './errors.js';

export const BUNDLE_MARKER = 0xfffffffe;

/** Bytes of a bundle's head for `count` frames: marker, count, lengths, padding. */
export function bundleHeadBytes(count: number): number {
  return align8(8 + 4 * count);
}

/** What one frame of `length` bytes adds to a bundle's frame area. */
export function bundleRecordBytes(length: number): number {
  return align8(length);
}

/** Frames in a bundle (its count word; the bundle is not validated). */
export function bundleCount(bundle: Uint8Array): number {
  return u32(bundle, 4);
}

/** Bytes of a bundle's frames, padding excluded (its length words; the bundle is not validated). */
export function bundleFrameBytes(bundle: Uint8Array): number {
  const count = u32(bundle, 4);
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += u32(bundle, 8 + 4 * i);
  return bytes;
}

/** Write a bundle's head for `count` frames into `out` from 0: marker, count, the lengths and padding. */
export function writeBundleHead(out: Uint8Array, lengths: ArrayLike<number>, count: number): void {
  putU32(out, 0, BUNDLE_MARKER);
  putU32(out, 4, count);
  for (let i = 0; i < count; i++) putU32(out, 8 + 4 * i, lengths[i]);
  for (let i = 8 + 4 * count, head = bundleHeadBytes(count); i < head; i++) out[i] = 0;
}

/** True when a transport message is a bundle. */
export function isBundle(msg: Uint8Array): boolean {
  return msg.length >= 8 && msg[0] === 0xfe && msg[1] === 0xff && msg[2] === 0xff && msg[3] === 0xff;
}

/** One message holding `frames` in order (one copy of each). */
export function encodeBundle(frames: readonly Uint8Array[]): Buffer {
  const count = frames.length;
  const head = bundleHeadBytes(count);
  let size = head;
  for (const f of frames) size += align8(f.length);
  // allocUnsafeSlow: an exclusively owned buffer (see encodeFrame); every byte is written below.
  // Plain index writes and loops rather than Buffer's writeUInt32LE/fill: their argument checks cost
  // more than the few bytes they write in a chip's rarely optimised code.
  const out = Buffer.allocUnsafeSlow(size);
  const lengths = new Array<number>(count);
  for (let i = 0; i < count; i++) lengths[i] = frames[i].length;
  writeBundleHead(out, lengths, count);
  let at = head;
  for (let i = 0; i < count; i++) {
    const f = frames[i];
    out.set(f, at);
    let end = at + f.length;
    at += align8(f.length);
    while (end < at) out[end++] = 0;
  }
  return out;
}

/**
 * The frames of a bundle, as views into it. Throws TransportError RACKEMU_ERR_FRAME when the lengths
 * do not add up to the message (a truncated or corrupted bundle: none of its frames can be trusted).
 */
export function splitBundle(msg: Uint8Array): Uint8Array[] {
  if (!isBundle(msg)) throw frameError(`not a bundle (${msg.length} bytes without the bundle marker)`);
  const count = u32(msg, 4);
  const head = count === 0 ? 0 : bundleHeadBytes(count);
  if (count === 0 || head > msg.length) {
    throw frameError(`bundle of ${msg.length} bytes claims ${count} frames`, { count, bytes: msg.length });
  }
  const out: Uint8Array[] = new Array(count);
  let at = head;
  for (let i = 0; i < count; i++) {
    const len = u32(msg, 8 + 4 * i);
    if (len === 0 || at + len > msg.length) {
      const bytes = msg.length;
      throw frameError(`bundle frame ${i} of ${count} (${len} bytes at ${at}) runs past the bundle's ${bytes} bytes`, {
        index: i,
        count,
        bytes,
      });
    }
    // a plain view: msg.subarray of a Buffer would construct a Buffer, through its JS constructor
    out[i] = new Uint8Array(msg.buffer, msg.byteOffset + at, len);
    at += align8(len);
  }
  if (at !== msg.length) {
    const message = `bundle of ${count} frames ends at byte ${at} but is ${msg.length} bytes`;
    throw frameError(message, { count, bytes: msg.length });
  }
  return out;
}

/**
 * The frames of a received bundle, as views (splitBundle); a malformed bundle goes to `malformed`
 * (none of its frames can be trusted) and gives no frames. For a receiver that must not throw.
 */
export function bundleFrames(msg: Uint8Array, malformed: (e: TransportError) => void): Uint8Array[] {
  try {
    return splitBundle(msg);
  } catch (e) {
    malformed(e as TransportError);
    return [];
  }
}
