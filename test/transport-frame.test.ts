import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  BUNDLE_MARKER,
  encodeBundle,
  FrameTemplate,
  isBundle,
  splitBundle,
  chunkFrame,
  chunkHeaderBytes,
  crc32,
  decodeFrame,
  encodeFrame,
  FrameReassembler,
  isChunk,
  tensorView,
  type FrameHeaderInit,
} from '../src/transport/internal.js';

function crcRef(data: Uint8Array): number {
  let c = ~0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s;
  };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r() >>> 24;
  return b;
}

const base = { src: 'r2.n4.c7', dst: 'r2.n5.c0', step: 12, tick: 123456789, tensor: 'layer3.attn.q', seq: 5 } as const;

describe('transport frame codec', () => {
  it('transport - crc32 matches the IEEE check value and a bytewise reference', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    for (const n of [1, 7, 8, 9, 63, 64, 65, 1000, 4099]) {
      const b = randomBytes(n, n);
      expect(crc32(b)).toBe(crcRef(b));
      // continuation over a split equals the whole
      const k = n >> 1;
      expect(crc32(b.subarray(k), crc32(b.subarray(0, k)))).toBe(crc32(b));
    }
  });

  it('transport - frame round trip with f32, i32 and none', () => {
    const f = Float32Array.from([1.5, -2.25, 3e-8, Number.NaN, Infinity, 0]);
    const e32 = encodeFrame({ ...base, dtype: 'f32', shape: [2, 3] }, new Uint8Array(f.buffer));
    const d32 = decodeFrame(e32);
    expect(d32.integrity).toBe('ok');
    expect(d32.header).toEqual({
      ...base,
      dtype: 'f32',
      shape: [2, 3],
      byteLength: 24,
      checksum: crc32(new Uint8Array(f.buffer)),
    });
    expect(Array.from(tensorView(d32) as Float32Array)).toEqual(Array.from(f));
    expect(d32.payload.byteOffset % 8).toBe(0); // payload is aligned within the frame

    const i = Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)]);
    const di = decodeFrame(encodeFrame({ ...base, dtype: 'i32', shape: [4] }, new Uint8Array(i.buffer)));
    expect(di.integrity).toBe('ok');
    expect(di.header.dtype).toBe('i32');
    expect(Array.from(tensorView(di) as Int32Array)).toEqual(Array.from(i));

    const en = encodeFrame(
      { ...base, dtype: 'none', shape: [4096, 14336], byteLength: 4096 * 14336 * 2 },
      new Uint8Array(0),
    );
    const dn = decodeFrame(en);
    expect(dn.integrity).toBe('ok');
    expect(dn.payload.length).toBe(0);
    expect(dn.header.byteLength).toBe(4096 * 14336 * 2);
    expect(dn.header.checksum).toBe(0);
    expect(tensorView(dn)).toBeUndefined();
    expect(en.length).toBeLessThan(128); // a timing frame is only a header
  });

  it("transport - header bytes are exactly msgpackr's, and any msgpack integer width decodes", () => {
    const packr = new Packr({ useRecords: false, moreTypes: false });
    // integers on every msgpack width boundary msgpackr uses, up to ticks beyond 32 bits
    const values = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
    for (const [k, v] of values.entries()) {
      const h = {
        src: 'r0.n0.c0',
        dst: 'r7.n8.c7',
        step: v,
        tick: values[values.length - 1 - k],
        tensor: `layer${k}.ffn.e3.w2`,
        seq: v % 1000,
      };
      const e = encodeFrame({ ...h, dtype: 'none', shape: [1, 4096], byteLength: 8192 }, new Uint8Array(0));
      const headLen = e.readUInt32LE(0);
      const expected = packr.pack([1, h.src, h.dst, h.step, h.tick, h.tensor, 'none', [1, 4096], 8192, 0, h.seq]);
      expect(Buffer.from(e.subarray(4, 4 + headLen))).toEqual(Buffer.from(expected));
      expect(decodeFrame(e).header).toEqual({ ...h, dtype: 'none', shape: [1, 4096], byteLength: 8192, checksum: 0 });
    }
    // another encoder may pick wider forms (uint64 for small numbers, str8 for short strings): same header
    const wide = Buffer.from([
      0x9b,
      0x01,
      0xd9,
      3,
      ...Buffer.from('a.b'),
      0xa3,
      ...Buffer.from('c.d'),
      0xcf,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      7, // step 7 as uint64
      0xcb,
      ...Buffer.from(new Float64Array([3e9]).buffer).reverse(), // tick as float64
      0xa1,
      ...Buffer.from('t'),
      0xa4,
      ...Buffer.from('none'),
      0xdc,
      0,
      2,
      0xcd,
      0,
      1,
      0x02, // shape as array16 [1, 2]
      0xce,
      0,
      0,
      0,
      9,
      0x00,
      0xcc,
      5,
    ]);
    const frame = Buffer.alloc(8 * Math.ceil((4 + wide.length) / 8));
    frame.writeUInt32LE(wide.length, 0);
    frame.set(wide, 4);
    expect(decodeFrame(frame).header).toEqual({
      src: 'a.b',
      dst: 'c.d',
      step: 7,
      tick: 3e9,
      tensor: 't',
      dtype: 'none',
      shape: [1, 2],
      byteLength: 9,
      checksum: 0,
      seq: 5,
    });
    // negative integers, nil or trailing bytes are not a header
    for (const bad of [
      packr.pack([1, 'a', 'b', -1, 0, 't', 'none', [1], 0, 0, 0]),
      packr.pack([1, 'a', 'b', 0, 0, 't', 'none', [1], null, 0, 0]),
      packr.pack([1, 'a', 'b', 0, 0, 't', 'bf16', [1], 0, 0, 0]),
      packr.pack([1, 'a', 'b', 0, 0.5, 't', 'none', [1], 0, 0, 0]),
      Buffer.concat([packr.pack([1, 'a', 'b', 0, 0, 't', 'none', [1], 0, 0, 0]), Buffer.from([0])]),
    ]) {
      const f = Buffer.alloc(8 * Math.ceil((4 + bad.length) / 8));
      f.writeUInt32LE(bad.length, 0);
      f.set(bad, 4);
      expect(() => decodeFrame(f)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    }
    // a header that fails in its version element leaves nothing behind for the next frame
    const badVersion = packr.pack([[], 'a', 'b', 0, 0, 't', 'none', [1], 0, 0, 0]);
    const f = Buffer.alloc(8 * Math.ceil((4 + badVersion.length) / 8));
    f.writeUInt32LE(badVersion.length, 0);
    f.set(badVersion, 4);
    expect(() => decodeFrame(f)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    expect(decodeFrame(frame).header.seq).toBe(5);
  });

  it('transport - a frame template encodes what encodeFrame does, and checks each payload', () => {
    const t = new FrameTemplate({ src: base.src, dst: base.dst, tensor: base.tensor, dtype: 'f32', shape: [2, 2] });
    const p = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    for (const [step, tick, seq] of [
      [0, 0, 0],
      [3, 2 ** 33, 70000],
    ]) {
      expect(t.encode(step, tick, seq, p)).toEqual(
        encodeFrame({ ...base, step, tick, seq, dtype: 'f32', shape: [2, 2] }, p),
      );
    }
    expect(() => t.encode(0, 0, 0, new Uint8Array(12))).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    expect(() => t.encode(-1, 0, 0, p)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    expect(() => t.encode(0, 1.5, 0, p)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    expect(
      () => new FrameTemplate({ src: 'a', dst: 'b', tensor: 't', dtype: 'constructor' as 'none', shape: [1] }),
    ).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
  });

  it('transport - a template encodes into a caller buffer of sizeBound bytes, exactly for frames without payload', () => {
    const none = new FrameTemplate({
      src: base.src,
      dst: base.dst,
      tensor: base.tensor,
      dtype: 'none',
      shape: [4, 4096],
      byteLength: 32768,
    });
    for (const [step, tick, seq] of [
      [0, 0, 0],
      [200, 70000, 300],
      [2 ** 20, 2 ** 33, 2 ** 32],
    ]) {
      const bound = none.sizeBound(step, tick, seq);
      const buf = new Uint8Array(bound + 16).fill(0xee);
      expect(none.encodeInto(buf, step, tick, seq, new Uint8Array(0))).toBe(bound);
      expect(Buffer.from(buf.subarray(0, bound))).toEqual(none.encode(step, tick, seq, new Uint8Array(0)));
      expect(buf[bound]).toBe(0xee); // nothing written past the frame
    }
    // with a payload the bound covers the widest checksum; the frame may be shorter
    const f32 = new FrameTemplate({ src: base.src, dst: base.dst, tensor: base.tensor, dtype: 'f32', shape: [1, 3] });
    for (const values of [
      [1, 2, 3],
      [0, 0, 0],
    ]) {
      const p = new Uint8Array(new Float32Array(values).buffer);
      const buf = new Uint8Array(f32.sizeBound(1, 2, 3));
      const n = f32.encodeInto(buf, 1, 2, 3, p);
      expect(n).toBeLessThanOrEqual(buf.length);
      expect(Buffer.from(buf.subarray(0, n))).toEqual(
        encodeFrame({ ...base, step: 1, tick: 2, seq: 3, dtype: 'f32', shape: [1, 3] }, p),
      );
    }
    expect(() => none.encodeInto(new Uint8Array(8), 0, 0, 0, new Uint8Array(0))).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }),
    );
    expect(() => none.sizeBound(0, -1, 0)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
  });

  it('transport - frameFor rewrites its reused frame to exactly what encode gives, across integer widths', () => {
    const t = new FrameTemplate({
      src: base.src,
      dst: base.dst,
      tensor: base.tensor,
      dtype: 'none',
      shape: [1, 8],
      byteLength: 16,
    });
    for (const [step, tick, seq] of [
      [1, 10, 0],
      [2, 20, 1],
      [3, 300, 127],
      [4, 400, 128],
      [5, 70000, 65536],
      [6, 2 ** 33, 65537],
      [7, 5, 3],
    ]) {
      expect(Buffer.from(t.frameFor(step, tick, seq))).toEqual(t.encode(step, tick, seq, new Uint8Array(0)));
    }
    expect(() => t.frameFor(0, -1, 0)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    const f32 = new FrameTemplate({ src: base.src, dst: base.dst, tensor: base.tensor, dtype: 'f32', shape: [1, 1] });
    expect(() => f32.frameFor(0, 0, 0)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
  });

  it('transport - a template matches exactly its own frame, byte for byte, at any alignment', () => {
    const t = new FrameTemplate({
      src: base.src,
      dst: base.dst,
      tensor: base.tensor,
      dtype: 'none',
      shape: [1, 4096],
      byteLength: 8192,
    });
    for (const [step, tick, seq] of [
      [7, 1234, 0],
      [300, 2 ** 33, 70000],
    ]) {
      const frame = t.encode(step, tick, seq, new Uint8Array(0));
      // aligned (word compare) and at an odd offset of a larger buffer (byte compare)
      const odd = new Uint8Array(frame.length + 3).subarray(3);
      odd.set(frame);
      for (const f of [frame, odd]) {
        expect(t.matches(f, step, tick, seq)).toBe(true);
        expect(t.matches(f, step + 1, tick, seq)).toBe(false);
        expect(t.matches(f, step, tick + 1, seq)).toBe(false);
        expect(t.matches(f, step, tick, seq + 1)).toBe(false);
        expect(t.matches(f.subarray(0, f.length - 8), step, tick, seq)).toBe(false);
        for (let i = 0; i < f.length; i++) {
          f[i] ^= 0x01;
          expect(t.matches(f, step, tick, seq), `byte ${i} flipped`).toBe(false);
          f[i] ^= 0x01;
        }
      }
      // another link's or tensor's frame with the same numbers
      const other = new FrameTemplate({
        src: base.dst,
        dst: base.src,
        tensor: base.tensor,
        dtype: 'none',
        shape: [1, 4096],
        byteLength: 8192,
      });
      expect(t.matches(other.encode(step, tick, seq, new Uint8Array(0)), step, tick, seq)).toBe(false);
    }
    // a template with a payload never matches (its checksum needs the payload)
    const f32 = new FrameTemplate({ src: base.src, dst: base.dst, tensor: base.tensor, dtype: 'f32', shape: [1, 1] });
    expect(f32.matches(f32.encode(0, 0, 0, new Uint8Array(4)), 0, 0, 0)).toBe(false);
  });

  it('transport - encoded frame owns its whole buffer so it can be transferred', () => {
    const e = encodeFrame({ ...base, dtype: 'i32', shape: [1] }, new Uint8Array(4));
    expect(e.byteOffset).toBe(0);
    expect(e.buffer.byteLength).toBe(e.length);
  });

  it('transport - checksum mismatch is detected', () => {
    const e = encodeFrame({ ...base, dtype: 'f32', shape: [256] }, randomBytes(1024, 3));
    const payloadStart = e.length - 1024;
    e[payloadStart + 500] ^= 0x10;
    const d = decodeFrame(e);
    expect(d.integrity).toBe('mismatch');
    expect(d.header.src).toBe('r2.n4.c7'); // the header still says whom to blame
    expect(decodeFrame(e, { verify: false }).integrity).toBe('unchecked');
  });

  it('transport - malformed frames throw RACKEMU_ERR_FRAME', () => {
    const e = encodeFrame({ ...base, dtype: 'f32', shape: [4] }, new Uint8Array(16));
    expect(() => decodeFrame(e.subarray(0, 3))).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    expect(() => decodeFrame(e.subarray(0, e.length - 4))).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }),
    );
    const bad = Buffer.from(e);
    bad.writeUInt32LE(1_000_000, 0);
    expect(() => decodeFrame(bad)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    const garbage = Buffer.from([2, 0, 0, 0, 0xc1, 0xc1]);
    expect(() => decodeFrame(garbage)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
  });

  it('transport - encode rejects headers that contradict the payload', () => {
    expect(() => encodeFrame({ ...base, dtype: 'f32', shape: [3] }, new Uint8Array(16))).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }),
    );
    expect(() => encodeFrame({ ...base, dtype: 'none', shape: [3] }, new Uint8Array(0))).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }),
    );
    expect(() => encodeFrame({ ...base, dtype: 'none', shape: [3], byteLength: 12 }, new Uint8Array(12))).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }),
    );
  });

  it('transport - tensorView copies a payload that is not 4-byte aligned', () => {
    const f = Float32Array.from([1, 2, 3]);
    const e = encodeFrame({ ...base, dtype: 'f32', shape: [3] }, new Uint8Array(f.buffer));
    const shifted = new Uint8Array(e.length + 1);
    shifted.set(e, 1);
    const v = tensorView(decodeFrame(shifted.subarray(1))) as Float32Array;
    expect(Array.from(v)).toEqual([1, 2, 3]);
  });
});

describe('transport bundles', () => {
  it('transport - a bundle carries frames in order, each 8-byte aligned, as views', () => {
    const frames = [1, 7, 8, 13, 64].map((n, i) =>
      encodeFrame({ ...base, seq: i, dtype: 'none', shape: [n], byteLength: n }, new Uint8Array(0)),
    );
    frames.push(
      encodeFrame({ ...base, seq: 9, dtype: 'f32', shape: [3] }, new Uint8Array(new Float32Array([1, 2, 3]).buffer)),
    );
    const b = encodeBundle(frames);
    expect(isBundle(b)).toBe(true);
    expect(b.readUInt32LE(0)).toBe(BUNDLE_MARKER);
    expect(isChunk(b)).toBe(false);
    expect(isBundle(frames[0])).toBe(false);
    const out = splitBundle(b);
    expect(out.map((f) => Buffer.from(f))).toEqual(frames.map((f) => Buffer.from(f)));
    for (const f of out) {
      expect(f.buffer).toBe(b.buffer); // no copy
      expect(f.byteOffset % 8).toBe(0);
    }
    expect(Array.from(tensorView(decodeFrame(out[5])) as Float32Array)).toEqual([1, 2, 3]);
  });

  it('transport - a truncated or inconsistent bundle throws RACKEMU_ERR_FRAME', () => {
    const frames = [3, 5].map((n, i) =>
      encodeFrame({ ...base, seq: i, dtype: 'none', shape: [n], byteLength: n }, new Uint8Array(0)),
    );
    const b = encodeBundle(frames);
    for (const bad of [
      b.subarray(0, b.length - 8),
      Buffer.concat([b, Buffer.alloc(8)]),
      Buffer.from([0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
    ]) {
      expect(() => splitBundle(bad)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    }
    const lying = Buffer.from(b);
    lying.writeUInt32LE(1_000_000, 8);
    expect(() => splitBundle(lying)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
  });
});

describe('transport chunking', () => {
  const frameOf = (src: string, seq: number, n: number): Buffer => {
    const init: FrameHeaderInit = { ...base, src, seq, dtype: 'i32', shape: [n / 4] };
    return encodeFrame(init, randomBytes(n, seq * 31 + src.length));
  };

  it('transport - a frame that fits is not chunked', () => {
    const f = frameOf('r0.n0.c0', 0, 400);
    const c = chunkFrame(f, 1024);
    expect(c).toHaveLength(1);
    expect(c[0]).toBe(f);
    expect(isChunk(f)).toBe(false);
  });

  it('transport - chunking and reassembly with interleaved sources and out-of-order chunks', () => {
    const max = 1000;
    const frames = [frameOf('r0.n0.c1', 0, 10_000), frameOf('r0.n0.c2', 0, 7_000), frameOf('r0.n0.c1', 1, 3_000)];
    const chunked = frames.map((f) => chunkFrame(f, max));
    for (const cs of chunked) {
      expect(cs.length).toBeGreaterThan(1);
      for (const c of cs) {
        expect(isChunk(c)).toBe(true);
        expect(c.length).toBeLessThanOrEqual(max);
      }
    }
    // interleave round-robin across the three frames, reversing the chunk order of the second
    const queues = [chunked[0].slice(), chunked[1].slice().reverse(), chunked[2].slice()];
    const r = new FrameReassembler();
    const done: Uint8Array[] = [];
    while (queues.some((q) => q.length > 0)) {
      for (let i = 0; i < queues.length; i++) {
        const c = queues[i].shift();
        if (!c) continue;
        const src = i === 1 ? 'b' : 'a';
        const out = r.push(c, src);
        if (out) done.push(out);
      }
    }
    expect(r.pendingFrames).toBe(0);
    expect(r.bufferedBytes).toBe(0);
    expect(done).toHaveLength(3);
    const bySeqSrc = new Map(done.map((f) => [`${decodeFrame(f).header.src}#${decodeFrame(f).header.seq}`, f]));
    for (const f of frames) {
      const h = decodeFrame(f).header;
      const got = bySeqSrc.get(`${h.src}#${h.seq}`)!;
      expect(Buffer.compare(Buffer.from(got), f)).toBe(0);
      expect(decodeFrame(got).integrity).toBe('ok');
    }
  });

  it('transport - a repeated chunk is ignored and a contradicting chunk throws', () => {
    const f = frameOf('r0.n0.c3', 7, 5_000);
    const cs = chunkFrame(f, 2048, 'k1');
    expect(cs[0].length).toBeLessThanOrEqual(2048);
    expect(chunkHeaderBytes('k1')).toBe(24);
    const r = new FrameReassembler();
    expect(r.push(cs[0])).toBeUndefined();
    expect(r.push(cs[0])).toBeUndefined();
    const forged = Buffer.from(cs[1]);
    forged.writeUInt32LE(99, 8); // count
    forged.writeUInt32LE(50, 4); // index
    expect(() => r.push(forged)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    let out: Uint8Array | undefined;
    for (const c of cs.slice(1)) out = r.push(c);
    expect(out && Buffer.compare(Buffer.from(out), f)).toBe(0);
    expect(() => r.push(f)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    expect(() => chunkFrame(f, 20, 'k')).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
  });
});
