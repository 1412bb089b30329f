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
 *
 * One codec (encoder, templates, decoder of one format), so it is kept whole past the 400-line guideline.
 */

/* eslint-disable max-lines -- one codec (see above) */

import { Packr } from 'msgpackr/pack';
import { align8, putU32, u32 } from './bytes.js';
import { crc32 } from './crc32.js';
import { frameError } from './errors.js';

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

/** The elements of a header that stay the same for every frame of one send instruction. */
export type FrameTemplateInit = Omit<FrameHeaderInit, 'step' | 'tick' | 'seq'>;

/**
 * The frames of one send instruction (same src, dst, tensor, dtype, shape and size) differ only in
 * step, tick, seq and checksum. A template packs the constant header elements once, with msgpackr, and
 * writes the four integers per frame in msgpack's shortest form, as msgpackr itself would: the header
 * bytes are exactly what packr.pack of the whole array gives (tested), for a fraction of the work in a
 * chip's isolate, where the codec runs a few hundred times per run and rarely reaches optimised code.
 *
 * Throws TransportError RACKEMU_ERR_FRAME when the header contradicts itself (construction) or the
 * payload (encode), or an integer field is not a non-negative safe integer: bugs in the caller, caught
 * where they happen rather than on the receiving chip.
 */
export class FrameTemplate {
  readonly dtype: Dtype;
  /** Payload bytes an encode call must be given (0 for 'none'). */
  readonly payloadBytes: number;
  /** Packed [version, src, dst] and [tensor, dtype, shape, byteLength]. */
  private readonly head: Uint8Array;
  private readonly mid: Uint8Array;
  private readonly tensor: string;
  /** frameFor/matches: the last payload-free frame, rewritten in place for the next. */
  private last: FrameImage | null = null;

  constructor(init: FrameTemplateInit) {
    const { dtype } = init;
    this.tensor = init.tensor;
    let byteLength: number;
    if (dtype === 'none') {
      if (init.byteLength === undefined || !Number.isSafeInteger(init.byteLength) || init.byteLength < 0) {
        throw frameError(`a 'none' frame needs a declared byteLength >= 0`, {
          tensor: init.tensor,
          got: String(init.byteLength),
        });
      }
      byteLength = init.byteLength;
      this.payloadBytes = 0;
    } else {
      if (!Object.hasOwn(BYTES_PER_ELEMENT, dtype))
        throw frameError(`unknown dtype ${String(dtype)}`, { tensor: init.tensor });
      let elements = 1;
      for (const d of init.shape) elements *= d;
      byteLength = elements * BYTES_PER_ELEMENT[dtype];
      if (init.byteLength !== undefined && init.byteLength !== byteLength) {
        throw frameError(
          `shape [${init.shape.join(',')}] of ${dtype} needs ${byteLength} bytes, byteLength says ${init.byteLength}`,
          { tensor: init.tensor },
        );
      }
      this.payloadBytes = byteLength;
    }
    this.dtype = dtype;
    this.head = Buffer.concat([
      Uint8Array.of(0x90 | HEADER_ELEMENTS),
      packr.pack(FRAME_VERSION),
      packr.pack(init.src),
      packr.pack(init.dst),
    ]);
    this.mid = Buffer.concat([
      packr.pack(init.tensor),
      packr.pack(dtype),
      packr.pack(init.shape),
      packr.pack(byteLength),
    ]);
  }

  /**
   * Bytes a buffer needs to hold the frame (step, tick, seq) of this template: its exact size for a
   * frame without payload; with a payload, an upper bound (the checksum's msgpack width, 1 to 5 bytes,
   * is known only once the payload is summed). Throws RACKEMU_ERR_FRAME when an integer is not a
   * non-negative safe integer.
   */
  sizeBound(step: number, tick: number, seq: number): number {
    return (
      align8(
        4 +
          this.headLen(
            intBytes(step, 'step'),
            intBytes(tick, 'tick'),
            intBytes(seq, 'seq'),
            this.payloadBytes === 0 ? 1 : 5,
          ),
      ) + this.payloadBytes
    );
  }

  /** Header length (after the 4-byte prefix) for integers of these encoded widths. */
  private headLen(step: number, tick: number, seq: number, checksum: number): number {
    return this.head.length + step + tick + this.mid.length + checksum + seq;
  }

  /**
   * One frame in a fresh buffer that owns its whole ArrayBuffer (offset 0, exact length), so it can be
   * handed to a transport that keeps it or transferred to another thread without a copy.
   */
  encode(step: number, tick: number, seq: number, payload: Uint8Array): Buffer {
    // allocUnsafeSlow, not allocUnsafe: small allocUnsafe buffers are slices of a shared pool, which can
    // neither be transferred to another thread nor handed out as an exclusively owned frame. encodeInto
    // writes every byte.
    const out = Buffer.allocUnsafeSlow(this.sizeBound(step, tick, seq));
    const size = this.encodeInto(out, step, tick, seq, payload);
    if (size === out.length) return out;
    // the bound is exact unless a payload's checksum is shorter than 5 bytes: copy then (encode is the
    // one-off path; senders of many frames use encodeInto)
    const exact = Buffer.allocUnsafeSlow(size);
    exact.set(out.subarray(0, size));
    return exact;
  }

  /**
   * Write the frame into `out` from offset 0 (out must hold sizeBound(step, tick, seq) bytes; a sender
   * keeps a buffer per size, so encoding allocates nothing); returns the frame's length.
   */
  encodeInto(out: Uint8Array, step: number, tick: number, seq: number, payload: Uint8Array): number {
    if (payload.length !== this.payloadBytes) {
      throw frameError(
        this.dtype === 'none'
          ? `a 'none' frame carries no payload (got ${payload.length} bytes)`
          : `shape of ${this.dtype} needs ${this.payloadBytes} bytes, payload has ${payload.length}`,
        { tensor: this.tensor },
      );
    }
    const checksum = payload.length === 0 ? 0 : crc32(payload);
    const headLen = this.headLen(
      intBytes(step, 'step'),
      intBytes(tick, 'tick'),
      intBytes(seq, 'seq'),
      intBytes(checksum, 'checksum'),
    );
    const payloadOffset = align8(4 + headLen);
    const size = payloadOffset + payload.length;
    if (out.length < size)
      throw frameError(`a buffer of ${out.length} bytes cannot hold a frame of ${size}`, { tensor: this.tensor });
    putU32(out, 0, headLen);
    out.set(this.head, 4);
    let at = writeInt(out, 4 + this.head.length, step);
    at = writeInt(out, at, tick);
    out.set(this.mid, at);
    at = writeInt(out, at + this.mid.length, checksum);
    at = writeInt(out, at, seq);
    // at most 7 bytes of padding: a loop, cheaper than Buffer#fill's argument checks in a cold isolate
    while (at < payloadOffset) out[at++] = 0;
    if (payload.length > 0) out.set(payload, payloadOffset);
    return size;
  }

  /**
   * The frame (step, tick, seq) of a template without payload (dtype 'none'), in a buffer the template
   * owns and reuses: valid until the template's next frameFor or matches call, so it suits a sender
   * whose transport copies the frame (ChipEndpoint.sendCopy). Only the three integers are written
   * when their msgpack widths are those of the previous frame, which is almost always the case.
   * Throws RACKEMU_ERR_FRAME for a template with a payload or an integer that is not a non-negative
   * safe integer.
   */
  frameFor(step: number, tick: number, seq: number): Uint8Array {
    if (this.payloadBytes !== 0)
      throw frameError(`frameFor is for frames without payload; ${this.dtype} frames need encodeInto`, {
        tensor: this.tensor,
      });
    intBytes(step, 'step');
    intBytes(tick, 'tick');
    intBytes(seq, 'seq');
    return this.image(step, tick, seq).bytes;
  }

  /**
   * True when `frame` is byte for byte what encode(step, tick, seq) of this template gives: a
   * receiver that knows which frame comes next checks it with this, without decoding the header
   * (timing fidelity, where every byte of a frame follows from the schedule). Only for templates
   * without a payload (dtype 'none'): a payload's checksum would need the payload. Never throws.
   */
  matches(frame: Uint8Array, step: number, tick: number, seq: number): boolean {
    if (this.payloadBytes !== 0 || !(step >= 0 && tick >= 0 && seq >= 0) || !Number.isSafeInteger(step + tick + seq))
      return false;
    const img = this.image(step, tick, seq);
    const size = img.bytes.length;
    if (frame.length !== size) return false;
    if ((frame.byteOffset & 3) === 0) {
      // whole words (a frame without payload is a multiple of 8 bytes): a quarter of the element loads
      if (frame.buffer !== wordsOf.buffer)
        wordsOf = { buffer: frame.buffer, words: new Int32Array(frame.buffer, 0, frame.buffer.byteLength >>> 2) };
      const w = wordsOf.words;
      const ew = img.words;
      const from = frame.byteOffset >>> 2;
      for (let i = 0; i < size >>> 2; i++) if (w[from + i] !== ew[i]) return false;
      return true;
    }
    const e = img.bytes;
    for (let i = 0; i < size; i++) if (frame[i] !== e[i]) return false;
    return true;
  }

  /**
   * Where the integers step, tick and seq begin (their msgpack type byte) in the payload-free frame
   * (checksum 0, one byte) of this template with this step and tick (seq comes last: its width moves
   * nothing), and so in what frameFor returns for them. A sender or receiver that
   * keeps copies of frames rewrites just these (with writeInt, for integers of the same intSize).
   */
  fieldOffsets(step: number, tick: number): { readonly step: number; readonly tick: number; readonly seq: number } {
    const stepAt = 4 + this.head.length;
    const tickAt = stepAt + intBytes(step, 'step');
    return { step: stepAt, tick: tickAt, seq: tickAt + intBytes(tick, 'tick') + this.mid.length + 1 };
  }

  /** The payload-free frame (step, tick, seq) in this template's reused buffer (integers already valid). */
  private image(step: number, tick: number, seq: number): FrameImage {
    const ws = intSize(step);
    const wt = intSize(tick);
    const wq = intSize(seq);
    let img = this.last;
    if (img === null || img.stepWidth !== ws || img.tickWidth !== wt || img.seqWidth !== wq) {
      const size = align8(4 + this.headLen(ws, wt, wq, 1));
      const buf = new ArrayBuffer(size);
      const at = this.fieldOffsets(step, tick);
      img = {
        bytes: new Uint8Array(buf),
        words: new Int32Array(buf),
        stepWidth: ws,
        tickWidth: wt,
        seqWidth: wq,
        stepAt: at.step,
        tickAt: at.tick,
        seqAt: at.seq,
      };
      this.encodeInto(img.bytes, step, tick, seq, EMPTY);
      this.last = img;
      return img;
    }
    writeInt(img.bytes, img.stepAt, step);
    writeInt(img.bytes, img.tickAt, tick);
    writeInt(img.bytes, img.seqAt, seq);
    return img;
  }
}

/** A payload-free frame of one template, and where its three integers sit (for their widths). */
interface FrameImage {
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
  readonly stepWidth: number;
  readonly tickWidth: number;
  readonly seqWidth: number;
  readonly stepAt: number;
  readonly tickAt: number;
  readonly seqAt: number;
}

/** A word view of the last buffer matches() compared against (frames of one batch share a buffer). */
let wordsOf: { buffer: ArrayBufferLike; words: Int32Array } = { buffer: new ArrayBuffer(0), words: new Int32Array(0) };

/**
 * Encode one frame (a one-off template: a sender of many frames keeps a FrameTemplate per send
 * instruction). Throws TransportError RACKEMU_ERR_FRAME when the header contradicts the payload.
 */
export function encodeFrame(init: FrameHeaderInit, payload: Uint8Array): Buffer {
  if (init.dtype !== 'none' && init.byteLength !== undefined && init.byteLength !== payload.length) {
    throw frameError(`byteLength ${init.byteLength} differs from payload length ${payload.length}`, {
      tensor: init.tensor,
    });
  }
  return new FrameTemplate(init).encode(init.step, init.tick, init.seq, payload);
}

/** Bytes msgpack (as msgpackr writes it) spends on a non-negative integer; throws on anything else. */
function intBytes(n: number, field: string): number {
  if (!(n >= 0) || !Number.isSafeInteger(n))
    throw frameError(`frame header ${field} must be a non-negative safe integer, got ${n}`, { field });
  return intSize(n);
}

/** intBytes without the check, for integers already known to be valid. */
export function intSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

/** Write n in msgpackr's form: fixint, uint8/16/32, and float64 above 32 bits (exact below 2^53). */
export function writeInt(b: Uint8Array, at: number, n: number): number {
  if (n < 0x80) {
    b[at] = n;
    return at + 1;
  }
  if (n < 0x100) {
    b[at] = 0xcc;
    b[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    b[at] = 0xcd;
    b[at + 1] = n >>> 8;
    b[at + 2] = n & 0xff;
    return at + 3;
  }
  if (n < 0x100000000) {
    b[at] = 0xce;
    b[at + 1] = n >>> 24;
    b[at + 2] = (n >>> 16) & 0xff;
    b[at + 3] = (n >>> 8) & 0xff;
    b[at + 4] = n & 0xff;
    return at + 5;
  }
  b[at] = 0xcb;
  F64[0] = n;
  // msgpack is big-endian; the host (x86, ARM) is little-endian
  for (let i = 0; i < 8; i++) b[at + 1 + i] = F64_BYTES[7 - i];
  return at + 9;
}

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const HEADER_ELEMENTS = 11;
const EMPTY = new Uint8Array(0);

/**
 * Decode a frame. The payload is a view into `frame`. With verify (the default) the payload CRC is
 * recomputed and the result reported in `integrity`.
 *
 * The header is read by a small msgpack reader of exactly what a header may hold (integers of every
 * msgpack width, strings, one array of integers), not by msgpackr's general unpack: this runs once
 * per frame in every chip's isolate. Any msgpack encoder's header decodes the same (tested against
 * msgpackr's output).
 *
 * Throws TransportError RACKEMU_ERR_FRAME only when the bytes are not a frame at all (truncated, bad
 * header, unknown version, payload length disagreeing with the header) — corruption the checksum cannot
 * even be applied to. `details` then carries whatever header fields could be read.
 */
export function decodeFrame(frame: Uint8Array, opts: { verify?: boolean } = {}): DecodedFrame {
  if (frame.length < 4) throw frameError(`frame of ${frame.length} bytes is shorter than its length prefix`);
  const headLen = u32(frame, 0);
  if (headLen === 0 || 4 + headLen > frame.length) {
    throw frameError(`frame header length ${headLen} does not fit a frame of ${frame.length} bytes`);
  }
  const r = reader;
  r.b = frame;
  r.at = 4;
  r.end = 4 + headLen;
  r.bad = null; // an earlier frame may have failed part-way
  const t = frame[4];
  const count = t >= 0x90 && t <= 0x9f ? t & 0x0f : -1;
  if (count !== HEADER_ELEMENTS)
    throw frameError('frame header is not a version-1 header array', {
      got: count < 0 ? `type 0x${t.toString(16)}` : `array(${count})`,
    });
  r.at = 5;
  const version = readInt(r);
  if (version !== FRAME_VERSION)
    throw frameError('frame header is not a version-1 header array', { got: `array(${count}) v${version}` });
  const src = readStr(r);
  const dst = readStr(r);
  const step = readInt(r);
  const tick = readInt(r);
  const tensor = readStr(r);
  const dtype = readStr(r) as Dtype;
  const shape = readShape(r);
  const byteLength = readInt(r);
  const checksum = readInt(r);
  const seq = readInt(r);
  r.b = EMPTY;
  if (r.bad !== null || r.at !== r.end) {
    const why = r.bad ?? `${r.end - r.at} bytes left over`;
    throw frameError(`frame header is not a valid version-1 header (${why})`);
  }
  if (!Object.hasOwn(BYTES_PER_ELEMENT, dtype))
    throw frameError(`frame header has unknown dtype ${dtype}`, { src, dst, tick, tensor, seq });
  const header: FrameHeader = { src, dst, step, tick, tensor, dtype, shape, byteLength, checksum, seq };
  const payloadOffset = align8(4 + headLen);
  const payload = payloadOffset >= frame.length ? EMPTY : frame.subarray(payloadOffset);
  const expected = dtype === 'none' ? 0 : byteLength;
  if (payload.length !== expected) {
    throw frameError(`frame payload is ${payload.length} bytes, header says ${expected}`, {
      src,
      dst,
      tick,
      tensor,
      seq,
    });
  }
  let integrity: Integrity = 'unchecked';
  if (opts.verify !== false) integrity = (payload.length === 0 ? 0 : crc32(payload)) === checksum ? 'ok' : 'mismatch';
  return { header, payload, integrity };
}

/** The header reader's state (one per thread; decodeFrame is not re-entrant and need not be). */
const reader = { b: EMPTY as Uint8Array, at: 0, end: 0, bad: null as string | null };
type Reader = typeof reader;

function fail(r: Reader, why: string): number {
  r.bad ??= why;
  r.at = r.end;
  return 0;
}

/** A msgpack integer (any width; float64 only when it holds an integer). */
function readInt(r: Reader): number {
  const b = r.b;
  const at = r.at;
  if (at >= r.end) return fail(r, 'truncated');
  const t = b[at];
  if (t < 0x80) {
    r.at = at + 1;
    return t;
  }
  let n: number;
  let size: number;
  switch (t) {
    case 0xcc:
      n = b[at + 1];
      size = 2;
      break;
    case 0xcd:
      n = (b[at + 1] << 8) | b[at + 2];
      size = 3;
      break;
    case 0xce:
      n = ((b[at + 1] << 24) | (b[at + 2] << 16) | (b[at + 3] << 8) | b[at + 4]) >>> 0;
      size = 5;
      break;
    case 0xcf:
      n =
        (((b[at + 1] << 24) | (b[at + 2] << 16) | (b[at + 3] << 8) | b[at + 4]) >>> 0) * 0x100000000 +
        (((b[at + 5] << 24) | (b[at + 6] << 16) | (b[at + 7] << 8) | b[at + 8]) >>> 0);
      size = 9;
      break;
    case 0xcb:
      for (let i = 0; i < 8; i++) F64_BYTES[7 - i] = b[at + 1 + i];
      n = F64[0];
      size = 9;
      break;
    default:
      // negative integers (fixint 0xe0.., int8..int64) have no place in a header
      return fail(r, `type 0x${t.toString(16)} where a non-negative integer belongs`);
  }
  if (at + size > r.end) return fail(r, 'truncated');
  if (!Number.isSafeInteger(n)) return fail(r, `${n} where an integer belongs`);
  r.at = at + size;
  return n;
}

function readStr(r: Reader): string {
  const b = r.b;
  const at = r.at;
  if (at >= r.end) {
    fail(r, 'truncated');
    return '';
  }
  const t = b[at];
  let len: number;
  let from: number;
  if (t >= 0xa0 && t <= 0xbf) {
    len = t & 0x1f;
    from = at + 1;
  } else if (t === 0xd9) {
    len = b[at + 1];
    from = at + 2;
  } else if (t === 0xda) {
    len = (b[at + 1] << 8) | b[at + 2];
    from = at + 3;
  } else if (t === 0xdb) {
    len = ((b[at + 1] << 24) | (b[at + 2] << 16) | (b[at + 3] << 8) | b[at + 4]) >>> 0;
    from = at + 5;
  } else {
    fail(r, `type 0x${t.toString(16)} where a string belongs`);
    return '';
  }
  if (from + len > r.end) {
    fail(r, 'truncated');
    return '';
  }
  r.at = from + len;
  return internString(b, from, len);
}

function readShape(r: Reader): number[] {
  const b = r.b;
  const at = r.at;
  if (at >= r.end) return [fail(r, 'truncated')];
  const t = b[at];
  let count: number;
  if (t >= 0x90 && t <= 0x9f) {
    count = t & 0x0f;
    r.at = at + 1;
  } else if (t === 0xdc) {
    count = (b[at + 1] << 8) | b[at + 2];
    r.at = at + 3;
  } else {
    return [fail(r, `type 0x${t.toString(16)} where the shape array belongs`)];
  }
  const shape: number[] = new Array(count);
  for (let i = 0; i < count; i++) shape[i] = readInt(r);
  return shape;
}

/**
 * Header strings (chip ids, tensor names, dtypes) come from a small set that repeats on every frame:
 * keep one string per distinct byte sequence instead of decoding and allocating three per frame.
 */
const strings = new Map<number, { readonly bytes: Uint8Array; readonly s: string }[]>();
let stringCount = 0;
const MAX_STRINGS = 4096;
const utf8 = new TextDecoder();

function internString(b: Uint8Array, from: number, len: number): string {
  let h = 0x811c9dc5 ^ len;
  for (let i = from; i < from + len; i++) h = Math.imul(h ^ b[i], 0x01000193);
  const bucket = strings.get(h);
  if (bucket !== undefined) {
    outer: for (const e of bucket) {
      const eb = e.bytes;
      if (eb.length !== len) continue;
      for (let i = 0; i < len; i++) if (eb[i] !== b[from + i]) continue outer;
      return e.s;
    }
  }
  const bytes = b.slice(from, from + len);
  const s = utf8.decode(bytes);
  if (stringCount >= MAX_STRINGS) {
    strings.clear();
    stringCount = 0;
  }
  if (bucket !== undefined && strings.has(h)) bucket.push({ bytes, s });
  else strings.set(h, [{ bytes, s }]);
  stringCount++;
  return s;
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
  return dtype === 'f32'
    ? new Float32Array(p.buffer, p.byteOffset, p.length >>> 2)
    : new Int32Array(p.buffer, p.byteOffset, p.length >>> 2);
}
