/**
 * Chunking of encoded frames that exceed a transport's message limit (NATS max_payload, 1 MiB by
 * default), and their reassembly.
 *
 * Chunk layout (little-endian):
 *
 *   u32 0xFFFFFFFF  marker: no frame starts with it (it would be a 4 GiB header), so chunks and whole
 *                   frames can share one subject and a receiver tells them apart by 4 bytes
 *   u32 index       0-based chunk index
 *   u32 count       number of chunks of this frame
 *   u32 offset      where this chunk's data goes in the frame (so arrival order does not matter)
 *   u32 total       encoded frame length
 *   u16 keyLen      length of the frame key
 *   key             utf-8 frame key: unique per sending endpoint, names the frame being rebuilt
 *   data            bytes [offset, offset + data.length) of the encoded frame
 */

import { u32 } from './bytes.js';
import { frameError } from './errors.js';
import { decodeFrame } from './frame.js';

export const CHUNK_MARKER = 0xffffffff;
const FIXED = 22;

/** Bytes a chunk spends on its own header for a given key. */
export function chunkHeaderBytes(key: string): number {
  return FIXED + Buffer.byteLength(key, 'utf8');
}

/** True when a transport message is a chunk rather than a whole frame. */
export function isChunk(msg: Uint8Array): boolean {
  return msg.length >= FIXED && msg[0] === 0xff && msg[1] === 0xff && msg[2] === 0xff && msg[3] === 0xff;
}

/**
 * Split an encoded frame into chunks of at most `maxPayload` bytes each (chunk header included).
 * A frame that already fits is returned as is, unwrapped. `key` must be unique among the frames the
 * sender has in flight; by default it is derived from the frame header (src>dst#seq), which a transport
 * that may carry duplicate seqs should override with its own counter.
 */
export function chunkFrame(encoded: Uint8Array, maxPayload: number, key?: string): Uint8Array[] {
  if (encoded.length <= maxPayload) return [encoded];
  if (key === undefined) {
    const h = decodeFrame(encoded, { verify: false }).header;
    key = `${h.src}>${h.dst}#${h.seq}`;
  }
  const keyBytes = Buffer.from(key, 'utf8');
  if (keyBytes.length > 0xffff) throw frameError('chunk key longer than 65535 bytes');
  const head = FIXED + keyBytes.length;
  const room = maxPayload - head;
  if (room < 1) {
    throw frameError(`max payload ${maxPayload} leaves no room for chunk data after a ${head}-byte chunk header`);
  }
  const total = encoded.length;
  if (total > 0xffffffff) throw frameError(`frame of ${total} bytes is too large to chunk`);
  const count = Math.ceil(total / room);
  const out: Uint8Array[] = new Array(count);
  for (let index = 0; index < count; index++) {
    const offset = index * room;
    const len = Math.min(room, total - offset);
    // One copy per byte is unavoidable here: the chunk header must precede the data in one message.
    const c = Buffer.allocUnsafeSlow(head + len);
    c.writeUInt32LE(CHUNK_MARKER, 0);
    c.writeUInt32LE(index, 4);
    c.writeUInt32LE(count, 8);
    c.writeUInt32LE(offset, 12);
    c.writeUInt32LE(total, 16);
    c.writeUInt16LE(keyBytes.length, 20);
    c.set(keyBytes, FIXED);
    c.set(encoded.subarray(offset, offset + len), head);
    out[index] = c;
  }
  return out;
}

interface Partial {
  readonly buf: Buffer;
  readonly count: number;
  readonly seen: Uint8Array;
  received: number;
}

/**
 * Rebuilds frames from chunks. Frames from different sources (and different frames of one source) may
 * interleave freely; chunks of one frame may arrive in any order; a repeated chunk is ignored.
 */
export class FrameReassembler {
  private readonly partial = new Map<string, Partial>();
  private pendingBytes = 0;

  /** Frames started but not yet complete. */
  get pendingFrames(): number {
    return this.partial.size;
  }

  /** Bytes allocated for frames not yet complete. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Add one chunk; `source` separates senders whose keys could collide (a transport passes the sending
   * endpoint's address). Returns the whole encoded frame when this chunk completes it, else undefined.
   * Throws TransportError RACKEMU_ERR_FRAME on a malformed chunk or one that contradicts earlier chunks
   * of the same frame.
   */
  push(chunk: Uint8Array, source = ''): Buffer | undefined {
    if (!isChunk(chunk)) throw frameError(`not a chunk (${chunk.length} bytes without the chunk marker)`, { source });
    const index = u32(chunk, 4);
    const count = u32(chunk, 8);
    const offset = u32(chunk, 12);
    const total = u32(chunk, 16);
    const keyLen = chunk[20] | (chunk[21] << 8);
    const head = FIXED + keyLen;
    if (head > chunk.length) throw frameError('chunk key runs past the end of the chunk', { source });
    const data = chunk.subarray(head);
    const key = Buffer.from(chunk.buffer, chunk.byteOffset + FIXED, keyLen).toString('utf8');
    if (count === 0 || index >= count || offset + data.length > total) {
      const message = `chunk ${index}/${count} at ${offset}+${data.length} does not fit a ${total}-byte frame`;
      throw frameError(message, { source, key });
    }
    const id = source + '\u0000' + key;
    let p = this.partial.get(id);
    if (p === undefined) {
      p = { buf: Buffer.allocUnsafeSlow(total), count, seen: new Uint8Array(count), received: 0 };
      this.partial.set(id, p);
      this.pendingBytes += total;
    } else if (p.count !== count || p.buf.length !== total) {
      const earlier = `${p.count} / ${p.buf.length}`;
      throw frameError(`chunk of frame ${key} says ${count} chunks / ${total} bytes, earlier chunks said ${earlier}`, {
        source,
        key,
      });
    }
    if (p.seen[index] === 1) return undefined;
    p.seen[index] = 1;
    p.buf.set(data, offset);
    p.received++;
    if (p.received < p.count) return undefined;
    this.partial.delete(id);
    this.pendingBytes -= total;
    return p.buf;
  }

  /** Forget partial frames (of one source, or all): e.g. when a peer is declared dead. */
  clear(source?: string): void {
    if (source === undefined) {
      this.partial.clear();
      this.pendingBytes = 0;
      return;
    }
    const prefix = source + '\u0000';
    for (const [id, p] of this.partial) {
      if (id.startsWith(prefix)) {
        this.partial.delete(id);
        this.pendingBytes -= p.buf.length;
      }
    }
  }
}
