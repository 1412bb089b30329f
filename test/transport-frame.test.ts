import { describe, expect, it } from 'vitest';
import {
  chunkFrame,
  chunkHeaderBytes,
  crc32,
  decodeFrame,
  encodeFrame,
  FrameReassembler,
  isChunk,
  tensorView,
  type FrameHeaderInit,
} from '../src/transport/index.js';

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
    expect(d32.header).toEqual({ ...base, dtype: 'f32', shape: [2, 3], byteLength: 24, checksum: crc32(new Uint8Array(f.buffer)) });
    expect(Array.from(tensorView(d32) as Float32Array)).toEqual(Array.from(f));
    expect(d32.payload.byteOffset % 8).toBe(0); // payload is aligned within the frame

    const i = Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)]);
    const di = decodeFrame(encodeFrame({ ...base, dtype: 'i32', shape: [4] }, new Uint8Array(i.buffer)));
    expect(di.integrity).toBe('ok');
    expect(di.header.dtype).toBe('i32');
    expect(Array.from(tensorView(di) as Int32Array)).toEqual(Array.from(i));

    const en = encodeFrame({ ...base, dtype: 'none', shape: [4096, 14336], byteLength: 4096 * 14336 * 2 }, new Uint8Array(0));
    const dn = decodeFrame(en);
    expect(dn.integrity).toBe('ok');
    expect(dn.payload.length).toBe(0);
    expect(dn.header.byteLength).toBe(4096 * 14336 * 2);
    expect(dn.header.checksum).toBe(0);
    expect(tensorView(dn)).toBeUndefined();
    expect(en.length).toBeLessThan(128); // a timing frame is only a header
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
    expect(() => decodeFrame(e.subarray(0, e.length - 4))).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    const bad = Buffer.from(e);
    bad.writeUInt32LE(1_000_000, 0);
    expect(() => decodeFrame(bad)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    const garbage = Buffer.from([2, 0, 0, 0, 0xc1, 0xc1]);
    expect(() => decodeFrame(garbage)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
  });

  it('transport - encode rejects headers that contradict the payload', () => {
    expect(() => encodeFrame({ ...base, dtype: 'f32', shape: [3] }, new Uint8Array(16))).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
    expect(() => encodeFrame({ ...base, dtype: 'none', shape: [3] }, new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_FRAME' }));
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
