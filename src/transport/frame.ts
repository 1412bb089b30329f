/**
 * The frame codec: one tensor slice (or, in timing fidelity, only its declared size) with the header
 * a receiving chip needs to check it against its Program.
 *
 * Wire format (all integers little-endian):
 *
 *   offset 0          u32   H = length of the msgpack header
 *   offset 4          H     msgpack array [version=1, src, dst, step, tick, tensor, dtype, shape,
 *                                          byteLength, checksum, seq]
 *   offset 4+H        0..7  zero padding so the payload starts at a multiple of 8
 *   offset align8(4+H)      payload: raw tensor bytes in host (little-endian) order; empty for 'none'
 *
 * The header is a positional array rather than a map: it is smaller, faster to pack and unpack, and the
 * version element lets the layout change without ambiguity. The padding lets a receiver view an f32 or
 * i32 payload in place (typed arrays need aligned offsets) when the frame itself starts aligned.
 *
 * A frame never starts with 0xFFFFFFFF (no header is 4 GiB), which is what lets chunks (chunk.ts) share
 * a subject with whole frames. Chunking of frames above a transport's message limit lives in chunk.ts.
 */

import { Packr } from 'msgpackr';
import { TransportError } from '../util/errors.js';
import { crc32 } from './crc32.js';

export { crc32 } from './crc32.js';

export type Dtype = 'f32' | 'i32' | 'none';

export const FRAME_VERSION = 1;

export interface FrameHeader {
  /** Sending chip id, e.g. "r2.n4.c7". */
  readonly src: string;
  /** Receiving chip id. */
  readonly dst: string;
  /** Index of the Plan step that produced the transfer. */
  readonly step: number;
  /** Virtual arrival tick the schedule gave this transfer. */
  readonly tick: number;
  /** Tensor (slice) id, as named in the Programs. */
  readonly tensor: string;
  /** Element type of the payload; 'none' for timing-fidelity frames that carry only a size. */
  readonly dtype: Dtype;
  /** Logical shape of the slice. */
  readonly shape: readonly number[];
  /** Logical size in bytes: the payload length, or the declared size of a 'none' frame. */
  readonly byteLength: number;
  /** CRC-32 of the payload bytes (0 for an empty payload). */
  readonly checksum: number;
  /** Per (src, dst) sequence number from 0: lets a receiver see duplicates and gaps. */
  readonly seq: number;
}

/** What a sender supplies; the codec fills in checksum (and byteLength for f32/i32). */
export type FrameHeaderInit = Omit<FrameHeader, 'checksum' | 'byteLength'> & {
  /** Required for 'none' (the declared size); optional for f32/i32, where it must equal the payload length. */
  readonly byteLength?: number;
};

export type Integrity = 'ok' | 'mismatch' | 'unchecked';

export interface DecodedFrame {
  readonly header: FrameHeader;
  /** A view into the frame (no copy): valid only as long as the frame's buffer is. */
  readonly payload: Uint8Array;
  /**
   * 'ok' or 'mismatch' when the payload CRC was verified, 'unchecked' when decodeFrame ran with
   * verify: false. A mismatch is data, not an exception: the runtime reports it as a schedule
   * violation with the header's chip ids and ticks.
   */
  readonly integrity: Integrity;
}

// One private Packr: the module-level pack() shares state with other users of msgpackr in the process.
// Records are off so any msgpack decoder (another process, another language) can read the header.
const packr = new Packr({ useRecords: false, moreTypes: false });

const BYTES_PER_ELEMENT: Record<Dtype, number> = { f32: 4, i32: 4, none: 0 };

function align8(n: number): number {
  return (n + 7) & ~7;
}

function frameError(message: string, details: Record<string, unknown> = {}, cause?: unknown): TransportError {
  return new TransportError('RACKEMU_ERR_FRAME', message, { details, cause });
}

/**
 * Encode one frame into a fresh buffer that owns its whole ArrayBuffer (offset 0, exact length), so the
 * embedded transport can transfer it to another thread without a copy.
 *
 * Throws TransportError RACKEMU_ERR_FRAME when the header contradicts the payload: that is a bug in the
 * caller, caught where it happens rather than on the receiving chip.
 */
export function encodeFrame(init: FrameHeaderInit, payload: Uint8Array): Buffer {
  const { dtype } = init;
  let byteLength: number;
  if (dtype === 'none') {
    if (payload.length !== 0) throw frameError(`a 'none' frame carries no payload (got ${payload.length} bytes)`, { tensor: init.tensor });
    if (init.byteLength === undefined || !Number.isSafeInteger(init.byteLength) || init.byteLength < 0) {
      throw frameError(`a 'none' frame needs a declared byteLength >= 0`, { tensor: init.tensor, got: String(init.byteLength) });
    }
    byteLength = init.byteLength;
  } else {
    const bpe = BYTES_PER_ELEMENT[dtype];
    if (bpe === undefined) throw frameError(`unknown dtype ${String(dtype)}`, { tensor: init.tensor });
    byteLength = payload.length;
    if (init.byteLength !== undefined && init.byteLength !== byteLength) {
      throw frameError(`byteLength ${init.byteLength} differs from payload length ${byteLength}`, { tensor: init.tensor });
    }
    let elements = 1;
    for (const d of init.shape) elements *= d;
    if (elements * bpe !== byteLength) {
      throw frameError(`shape [${init.shape.join(',')}] of ${dtype} needs ${elements * bpe} bytes, payload has ${byteLength}`, {
        tensor: init.tensor,
      });
    }
  }
  const checksum = payload.length === 0 ? 0 : crc32(payload);
  const head = packr.pack([
    FRAME_VERSION,
    init.src,
    init.dst,
    init.step,
    init.tick,
    init.tensor,
    dtype,
    init.shape,
    byteLength,
    checksum,
    init.seq,
  ]);
  const payloadOffset = align8(4 + head.length);
  // allocUnsafeSlow, not allocUnsafe: small allocUnsafe buffers are slices of a shared pool, which can
  // neither be transferred to another thread nor handed out as an exclusively owned frame. The only
  // bytes not overwritten below are the padding, which is zeroed explicitly.
  const out = Buffer.allocUnsafeSlow(payloadOffset + payload.length);
  out.writeUInt32LE(head.length, 0);
  out.set(head, 4);
  out.fill(0, 4 + head.length, payloadOffset);
  out.set(payload, payloadOffset);
  return out;
}

/**
 * Decode a frame. The payload is a view into `frame`. With verify (the default) the payload CRC is
 * recomputed and the result reported in `integrity`.
 *
 * Throws TransportError RACKEMU_ERR_FRAME only when the bytes are not a frame at all (truncated, bad
 * header, unknown version, payload length disagreeing with the header) — corruption the checksum cannot
 * even be applied to. `details` then carries whatever header fields could be read.
 */
export function decodeFrame(frame: Uint8Array, opts: { verify?: boolean } = {}): DecodedFrame {
  if (frame.length < 4) throw frameError(`frame of ${frame.length} bytes is shorter than its length prefix`);
  const headLen = (frame[0] | (frame[1] << 8) | (frame[2] << 16) | (frame[3] << 24)) >>> 0;
  if (headLen === 0 || 4 + headLen > frame.length) {
    throw frameError(`frame header length ${headLen} does not fit a frame of ${frame.length} bytes`);
  }
  let a: unknown;
  try {
    a = packr.unpack(frame.subarray(4, 4 + headLen));
  } catch (cause) {
    throw frameError('frame header is not valid msgpack', {}, cause);
  }
  if (!Array.isArray(a) || a.length !== 11 || a[0] !== FRAME_VERSION) {
    throw frameError('frame header is not a version-1 header array', { got: Array.isArray(a) ? `array(${a.length}) v${String(a[0])}` : typeof a });
  }
  const header: FrameHeader = {
    src: a[1],
    dst: a[2],
    step: a[3],
    tick: a[4],
    tensor: a[5],
    dtype: a[6],
    shape: a[7],
    byteLength: a[8],
    checksum: a[9],
    seq: a[10],
  };
  const payloadOffset = align8(4 + headLen);
  const payload = payloadOffset >= frame.length ? frame.subarray(frame.length) : frame.subarray(payloadOffset);
  const expected = header.dtype === 'none' ? 0 : header.byteLength;
  if (payload.length !== expected) {
    throw frameError(`frame payload is ${payload.length} bytes, header says ${expected}`, {
      src: header.src,
      dst: header.dst,
      tick: header.tick,
      tensor: header.tensor,
      seq: header.seq,
    });
  }
  let integrity: Integrity = 'unchecked';
  if (opts.verify !== false) integrity = (payload.length === 0 ? 0 : crc32(payload)) === header.checksum ? 'ok' : 'mismatch';
  return { header, payload, integrity };
}

/**
 * The payload as a typed array: a view when the payload is 4-byte aligned in memory (frames encoded by
 * encodeFrame and received whole usually are), a copy otherwise (e.g. a NATS message that starts at an
 * odd offset of a socket buffer). Returns undefined for 'none' frames.
 */
export function tensorView(decoded: DecodedFrame): Float32Array | Int32Array | undefined {
  const { dtype } = decoded.header;
  if (dtype === 'none') return undefined;
  let p = decoded.payload;
  // new Uint8Array(view) copies; p.slice() would not when p is a Buffer (Buffer#slice is a view).
  if ((p.byteOffset & 3) !== 0) p = new Uint8Array(p);
  return dtype === 'f32' ? new Float32Array(p.buffer, p.byteOffset, p.length >>> 2) : new Int32Array(p.buffer, p.byteOffset, p.length >>> 2);
}
