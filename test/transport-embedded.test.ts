import { describe, expect, it } from 'vitest';
import { checkEchoes, runWorkerPair } from './fixtures/transport-pair.js';
import { createEmbeddedFabric, decodeFrame, encodeFrame, openEndpoint, type ChipEndpoint, type TransportConfig } from '../src/transport/index.js';

const A = 'r0.n0.c0';
const B = 'r0.n0.c1';
const C = 'r0.n1.c0';

function frame(src: string, dst: string, seq: number, values: number[]): Buffer {
  return encodeFrame({ src, dst, step: seq, tick: seq * 3, tensor: 'x', dtype: 'f32', shape: [values.length], seq }, new Uint8Array(Float32Array.from(values).buffer));
}

describe('transport embedded', () => {
  it('transport - embedded endpoints in one thread deliver in order with the sender id', async () => {
    const fabric = createEmbeddedFabric([
      [A, B],
      [B, A],
      [C, B],
    ]);
    expect([...fabric.chips].sort()).toEqual([A, B, C]);
    const eps: Record<string, ChipEndpoint> = {};
    for (const id of [A, B, C]) eps[id] = await openEndpoint(fabric.endpointConfig(id).config, id);
    const got: Array<[string, number, number[]]> = [];
    let resolve!: () => void;
    const all = new Promise<void>((r) => (resolve = r));
    eps[B].onFrame((f, src) => {
      const d = decodeFrame(f);
      got.push([src, d.header.seq, Array.from(new Float32Array(d.payload.slice().buffer))]);
      if (got.length === 200) resolve();
    });
    for (let i = 0; i < 100; i++) {
      eps[A].send(B, frame(A, B, i, [i]));
      eps[C].send(B, frame(C, B, i, [1000 + i]));
    }
    await all;
    for (const src of [A, C]) {
      const mine = got.filter((g) => g[0] === src);
      expect(mine.map((g) => g[1])).toEqual([...Array(100).keys()]);
      expect(mine.map((g) => g[2][0])).toEqual([...Array(100).keys()].map((i) => (src === A ? i : 1000 + i)));
    }
    expect(eps[A].stats()).toMatchObject({ framesSent: 100, creditStalls: 0 });
    expect(eps[B].stats().framesReceived).toBe(200);
    await Promise.all(Object.values(eps).map((e) => e.close()));
  });

  it('transport - embedded send moves the frame buffer instead of copying it', async () => {
    const fabric = createEmbeddedFabric([[A, B]]);
    const a = await openEndpoint(fabric.endpointConfig(A).config, A);
    const b = await openEndpoint(fabric.endpointConfig(B).config, B);
    const got = new Promise<Uint8Array>((r) => b.onFrame((f) => r(f)));
    const f = frame(A, B, 0, [1, 2, 3]);
    const len = f.length;
    a.send(B, f);
    expect(f.buffer.byteLength).toBe(0); // detached: ownership moved with the message
    expect((await got).length).toBe(len);
    // a view into a larger buffer is copied, leaving the caller's buffer intact
    const big = new Uint8Array(len + 8);
    big.set(frame(A, B, 1, [1, 2, 3]), 8);
    a.send(B, big.subarray(8));
    expect(big.buffer.byteLength).toBe(len + 8);
    await Promise.all([a.close(), b.close()]);
  });

  it('transport - embedded loopback, early frames and unknown destinations', async () => {
    const fabric = createEmbeddedFabric([[A, B]], [C]);
    const a = await openEndpoint(fabric.endpointConfig(A).config, A);
    const b = await openEndpoint(fabric.endpointConfig(B).config, B);
    a.send(A, frame(A, A, 0, [5]));
    b.send(A, frame(B, A, 0, [6])); // before A registers its handler
    expect(() => a.send(C, frame(A, C, 0, [1]))).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' }));
    const got: string[] = [];
    await new Promise<void>((r) =>
      a.onFrame((_f, src) => {
        got.push(src);
        if (got.length === 2) r();
      }),
    );
    expect(got.sort()).toEqual([A, B]);
    expect(() => fabric.endpointConfig(A)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' }));
    await expect(openEndpoint(fabric.endpointConfig(C).config, A)).rejects.toMatchObject({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' });
    await expect(openEndpoint({ kind: 'carrier-pigeon' } as unknown as TransportConfig, A)).rejects.toMatchObject({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' });
    await Promise.all([a.close(), b.close()]);
  });

  it('transport - embedded across two real worker threads', async () => {
    const fabric = createEmbeddedFabric([[A, B]]);
    const ca = fabric.endpointConfig(A);
    const cb = fabric.endpointConfig(B);
    const frames = 300;
    const got = await runWorkerPair([ca.config, cb.config], [ca.transferList, cb.transferList], frames);
    checkEchoes(got, frames, B);
  });
});
