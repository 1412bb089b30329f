import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { checkEchoes, runWorkerPair } from './fixtures/transport-pair.js';
import {
  bundleCount,
  createEmbeddedFabric,
  decodeFrame,
  encodeBundle,
  encodeFrame,
  MIN_RING_BYTES,
  openEndpoint,
  ringSizer,
  trafficBytes,
  type ChipEndpoint,
  type EmbeddedTransportConfig,
  type PairTraffic,
  type TransportConfig,
} from '../src/transport/internal.js';
import type { TransportError } from '../src/util/errors.js';

const A = 'r0.n0.c0';
const B = 'r0.n0.c1';
const C = 'r0.n1.c0';

function frame(src: string, dst: string, seq: number, values: number[]): Buffer {
  return encodeFrame(
    { src, dst, step: seq, tick: seq * 3, tensor: 'x', dtype: 'f32', shape: [values.length], seq },
    new Uint8Array(Float32Array.from(values).buffer),
  );
}

/** Sleep without returning to the event loop (as a chip busy computing would). */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// A producer chip in a real worker thread, on the compiled transport (dist/, like the fixture chips).
// On 'go' it sends `frames` frames to each of `peers`: frame i carries seq i and a payload of
// sizes[i % sizes.length] bytes (a multiple of 4: an i32 tensor), every byte (i * 7 + j) & 255; then
// posts 'sent' with its stats.
const PRODUCER = `
const { parentPort, workerData: wd } = require('node:worker_threads');
(async () => {
  const { openEndpoint, encodeFrame } = await import(wd.dist);
  const ep = await openEndpoint(wd.config, wd.chipId, { onError: (e) => parentPort.postMessage({ type: 'error', code: e.code, message: e.message }) });
  parentPort.once('message', async () => {
    for (let i = 0; i < wd.frames; i++) {
      for (const peer of wd.peers) {
        const n = wd.sizes[i % wd.sizes.length];
        const payload = new Uint8Array(n);
        for (let j = 0; j < n; j++) payload[j] = (i * 7 + j) & 255;
        ep.send(peer, encodeFrame({ src: wd.chipId, dst: peer, step: i, tick: i, tensor: 'p', dtype: 'i32', shape: [n / 4], seq: i }, payload));
      }
    }
    parentPort.postMessage({ type: 'sent', stats: ep.stats() });
  });
  parentPort.on('message', (m) => { if (m === 'close') void ep.close().then(() => parentPort.close()); });
  parentPort.postMessage({ type: 'ready' });
})();
`;
const DIST = new URL('../dist/src/transport/internal.js', import.meta.url).href;

interface ProducerMsg {
  type: 'ready' | 'sent' | 'error';
  code?: string;
  message?: string;
  stats?: { framesSent: number; creditStalls: number };
}

function startProducer(
  config: TransportConfig,
  chipId: string,
  peers: string[],
  frames: number,
  sizes: number[],
): { worker: Worker; next: (type: ProducerMsg['type']) => Promise<ProducerMsg> } {
  const worker = new Worker(PRODUCER, { eval: true, workerData: { dist: DIST, config, chipId, peers, frames, sizes } });
  const seen: ProducerMsg[] = [];
  const waiting: Array<[ProducerMsg['type'], (m: ProducerMsg) => void, (e: Error) => void]> = [];
  let crashed: Error | null = null;
  worker.on('message', (m: ProducerMsg) => {
    const i = waiting.findIndex(([t]) => t === m.type);
    if (i >= 0) waiting.splice(i, 1)[0][1](m);
    else seen.push(m);
  });
  worker.on('error', (e) => {
    crashed = e;
    for (const [, , reject] of waiting.splice(0)) reject(e);
  });
  const next = (type: ProducerMsg['type']): Promise<ProducerMsg> => {
    const i = seen.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]);
    if (crashed) return Promise.reject(crashed);
    return new Promise((resolve, reject) => waiting.push([type, resolve, reject]));
  };
  return { worker, next };
}

/** Check a frame from PRODUCER: its seq is the one expected and its payload bytes are intact. */
function checkProduced(f: Uint8Array, expectSeq: number, sizes: number[]): void {
  const d = decodeFrame(f);
  expect(d.integrity).toBe('ok');
  expect(d.header.seq).toBe(expectSeq);
  const n = sizes[expectSeq % sizes.length];
  expect(d.payload.length).toBe(n);
  for (let j = 0; j < n; j++)
    if (d.payload[j] !== ((expectSeq * 7 + j) & 255))
      throw new Error(`frame ${expectSeq}: byte ${j} is ${d.payload[j]}`);
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
    for (const id of [A, B, C]) {
      const config = fabric.endpointConfig(id);
      // shared memory travels by structured clone, nothing to transfer: a clone holds the same rings
      const clone = structuredClone(config);
      const shared = [clone.doorbells, ...Object.values(clone.outbound), ...Object.values(clone.inbound)];
      for (const sab of shared) expect(sab).toBeInstanceOf(SharedArrayBuffer);
      new Int32Array(config.doorbells)[15] = 7; // no endpoint is open yet: the word is free to probe
      expect(new Int32Array(clone.doorbells)[15]).toBe(7);
      new Int32Array(config.doorbells)[15] = 0;
      eps[id] = await openEndpoint(config, id);
    }
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

  it('transport - embedded cork holds frames until uncork, then one publish per destination, same frames in order', async () => {
    const fabric = createEmbeddedFabric([
      [A, B],
      [A, C],
    ]);
    const eps: Record<string, ChipEndpoint> = {};
    for (const id of [A, B, C]) eps[id] = await openEndpoint(fabric.endpointConfig(id), id, { delivery: 'poll' });
    const got: Record<string, number[]> = { [B]: [], [C]: [] };
    for (const id of [B, C])
      eps[id].onFrame((f, src) => {
        expect(src).toBe(A);
        got[id].push(decodeFrame(f).header.seq);
      });
    eps[A].cork();
    for (let i = 0; i < 30; i++) eps[A].send(i % 3 === 0 ? C : B, frame(A, i % 3 === 0 ? C : B, i, [i]));
    // held: nothing is visible to the receivers yet
    expect(eps[B].pollSync!(0)).toBe(0);
    expect(eps[C].pollSync!(0)).toBe(0);
    expect(eps[A].stats()).toMatchObject({ framesSent: 30, messagesSent: 0 });
    eps[A].uncork();
    expect(eps[A].stats().messagesSent).toBe(2); // one publish per destination
    // the receiver sleeps until all 20 are in: the batch counts as 20 frames on its doorbell
    expect(eps[B].pollSync!(1000, 20)).toBe(20);
    expect(eps[C].pollSync!(1000, 10)).toBe(10);
    expect(got[B]).toEqual([...Array(30).keys()].filter((i) => i % 3 !== 0));
    expect(got[C]).toEqual([...Array(30).keys()].filter((i) => i % 3 === 0));
    // uncorked again: each send is its own publish
    eps[A].send(B, frame(A, B, 30, [30]));
    expect(eps[A].stats().messagesSent).toBe(3);
    await Promise.all(Object.values(eps).map((e) => e.close()));
  });

  it('transport - embedded bundles are one record: taken whole by a bundle handler, or delivered frame by frame in order', async () => {
    // a 1 KiB ring: the last bundle is larger than the ring and streams through it
    const fabric = createEmbeddedFabric([[A, B]], [], { ringBytes: 1024 });
    const errors: TransportError[] = [];
    const a = await openEndpoint(fabric.endpointConfig(A), A, { delivery: 'poll' });
    const b = await openEndpoint(fabric.endpointConfig(B), B, { delivery: 'poll', onError: (e) => errors.push(e) });
    const seqs: number[] = [];
    b.onFrame((f, src) => {
      expect(src).toBe(A);
      seqs.push(decodeFrame(f).header.seq);
    });
    a.onFrame(() => undefined);
    const frames = (from: number, n: number) => Array.from({ length: n }, (_, i) => frame(A, B, from + i, [from + i]));
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
    a.send(B, frame(A, B, 0, [0]));
    a.sendBundle(B, encodeBundle(frames(1, 3)));
    a.send(B, frame(A, B, 4, [4]));
    expect(a.stats()).toMatchObject({
      framesSent: 5,
      messagesSent: 3,
      bytesSent: [0, 1, 2, 3, 4].reduce((n, i) => n + frame(A, B, i, [i]).length, 0),
    });
    // no bundle handler: one frame at a time; the bundle counts its 3 frames on the doorbell
    expect(b.pollSync!(1000, 5)).toBe(5);
    expect(seqs).toEqual(range(0, 5));
    const offered: number[] = [];
    let take = true;
    b.onBundle((bundle, src) => {
      expect(src).toBe(A);
      offered.push(bundleCount(bundle));
      return take;
    });
    a.sendBundle(B, encodeBundle(frames(5, 2)));
    expect(b.pollSync!(1000, 2)).toBe(2);
    expect(seqs).toEqual(range(0, 5)); // taken whole: not one by one
    take = false;
    const big = encodeBundle(frames(7, 40));
    expect(big.length).toBeGreaterThan(1024);
    a.sendBundle(B, big);
    expect(b.pollSync!(1000, 40)).toBe(40);
    expect(offered).toEqual([2, 40]);
    expect(seqs).toEqual([...range(0, 5), ...range(7, 47)]);
    expect(b.stats()).toMatchObject({
      framesReceived: 47,
      bytesReceived: range(0, 47).reduce((n, i) => n + frame(A, B, i, [i]).length, 0),
    });
    // a bundle handler that throws breaks its contract: reported, and the frames still come one by one
    b.onBundle(() => {
      throw new Error('boom');
    });
    a.sendBundle(B, encodeBundle(frames(47, 2)));
    expect(b.pollSync!(1000, 2)).toBe(2);
    expect(seqs.slice(-2)).toEqual([47, 48]);
    expect(errors.map((e) => e.code)).toEqual(['RACKEMU_ERR_TRANSPORT']);
    expect(errors[0].message).toMatch(/bundle handler of r0\.n0\.c1 threw/);
    await Promise.all([a.close(), b.close()]);
  });

  it('transport - embedded corked frames leave before the sender blocks: on pollSync, and on a full ring', async () => {
    const fabric = createEmbeddedFabric([[A, B]], [], { ringBytes: 1024 });
    const a = await openEndpoint(fabric.endpointConfig(A), A, { delivery: 'poll' });
    const b = await openEndpoint(fabric.endpointConfig(B), B, { delivery: 'poll' });
    const seqs: number[] = [];
    b.onFrame((f) => seqs.push(decodeFrame(f).header.seq));
    a.onFrame(() => undefined);
    a.cork();
    a.send(B, frame(A, B, 0, [0]));
    a.pollSync!(0); // a chip about to wait never sits on frames it holds
    expect(b.pollSync!(0)).toBe(1);
    // a corked sender that fills the ring publishes what it holds and waits for the receiver, which
    // drains from another thread's point of view only when it polls: run it on a timer meanwhile
    const bigger = [...Array(40).keys()].map((i) => frame(A, B, i + 1, Array(20).fill(i)));
    const drainer = setInterval(() => b.pollSync!(0), 5);
    const done = new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (seqs.length === 41) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    // sends from a worker-free thread would block this thread against its own receiver: the embedded
    // transport collects a same-thread receiver itself while it waits for room
    for (const f of bigger) a.send(B, f);
    a.uncork();
    await done;
    clearInterval(drainer);
    expect(seqs).toEqual([...Array(41).keys()]);
    expect(a.stats().creditStalls).toBeGreaterThan(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('transport - embedded send copies the frame into shared memory and leaves the caller its buffer', async () => {
    // (The MessagePort transport moved the frame's ArrayBuffer; the ring transport copies the bytes into
    // the receiver's ring, and the receiver gets a copy it owns.)
    const fabric = createEmbeddedFabric([[A, B]]);
    const a = await openEndpoint(fabric.endpointConfig(A), A);
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    const got: Uint8Array[] = [];
    b.onFrame((f) => got.push(f));
    const f = frame(A, B, 0, [1, 2, 3]);
    const len = f.length;
    a.send(B, f);
    expect(f.buffer.byteLength).toBeGreaterThanOrEqual(len); // not detached
    // a view into a larger buffer is sent as its bytes alone
    const big = new Uint8Array(len + 8);
    big.set(frame(A, B, 1, [4, 5, 6]), 8);
    a.send(B, big.subarray(8));
    expect(b.pollSync!(1000)).toBeGreaterThan(0);
    expect(got.map((g) => g.length)).toEqual([len, len]);
    expect(got[0]).toEqual(new Uint8Array(f));
    expect(Array.from(decodeFrame(got[1]).payload.slice())).toEqual(
      Array.from(new Uint8Array(Float32Array.from([4, 5, 6]).buffer)),
    );
    // the receiver's copy: neither the sender's buffer nor the shared ring (frames collected together
    // may share one buffer, each a view of its own bytes)
    for (const g of got) {
      expect(g.buffer).not.toBe(f.buffer);
      expect(g.buffer).toBeInstanceOf(ArrayBuffer);
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('transport - embedded loopback, early frames and unknown destinations', async () => {
    const fabric = createEmbeddedFabric([[A, B]], [C]);
    const a = await openEndpoint(fabric.endpointConfig(A), A);
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    a.send(A, frame(A, A, 0, [5]));
    b.send(A, frame(B, A, 0, [6])); // before A registers its handler
    expect(() => a.send(C, frame(A, C, 0, [1]))).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' }),
    );
    expect(() => a.pollSync!(0)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' })); // no handler yet
    const got: string[] = [];
    await new Promise<void>((r) =>
      a.onFrame((_f, src) => {
        got.push(src);
        if (got.length === 2) r();
      }),
    );
    expect(got.sort()).toEqual([A, B]);
    expect(() => fabric.endpointConfig(A)).toThrow(expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' }));
    await expect(openEndpoint(fabric.endpointConfig(C), A)).rejects.toMatchObject({
      code: 'RACKEMU_ERR_TRANSPORT_CONFIG',
    });
    await expect(openEndpoint({ kind: 'carrier-pigeon' } as unknown as TransportConfig, A)).rejects.toMatchObject({
      code: 'RACKEMU_ERR_TRANSPORT_CONFIG',
    });
    await expect(
      openEndpoint({ kind: 'embedded', chipId: A, ports: {} } as unknown as TransportConfig, A),
    ).rejects.toMatchObject({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' });
    expect(() => createEmbeddedFabric([[A, B]], [], { ringBytes: 0 })).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' }),
    );
    await Promise.all([a.close(), b.close()]);
  });

  it('transport - embedded pollSync delivers synchronously and times out', async () => {
    const fabric = createEmbeddedFabric([[A, B]]);
    const a = await openEndpoint(fabric.endpointConfig(A), A);
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    const got: Array<[string, number]> = [];
    b.onFrame((f, src) => got.push([src, decodeFrame(f).header.seq]));
    for (let i = 0; i < 3; i++) a.send(B, frame(A, B, i, [i]));
    b.send(B, frame(B, B, 9, [9])); // loopback is delivered by pollSync too
    expect(b.pollSync!(1000)).toBeGreaterThan(0);
    // all of them, before pollSync returned (order holds per sender, not across senders)
    expect(got).toHaveLength(4);
    expect(got.filter(([src]) => src === A)).toEqual([
      [A, 0],
      [A, 1],
      [A, 2],
    ]);
    expect(got).toContainEqual([B, 9]);
    const t0 = performance.now();
    expect(b.pollSync!(80)).toBe(0);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(75);
    expect(waited).toBeLessThan(1000);
    expect(b.pollSync!(0)).toBe(0);
    // nothing is delivered twice once the thread is back in its event loop
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(4);
    await Promise.all([a.close(), b.close()]);
    expect(b.pollSync!(10)).toBe(0); // closed
  });

  it('transport - embedded pollSync wakes when another thread sends', async () => {
    const fabric = createEmbeddedFabric([[A, B]]);
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    const p = startProducer(fabric.endpointConfig(A), A, [B], 1, [32]);
    try {
      await p.next('ready');
      const got: Uint8Array[] = [];
      b.onFrame((f) => got.push(f));
      p.worker.postMessage('go');
      const t0 = performance.now();
      expect(b.pollSync!(10_000)).toBeGreaterThan(0);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(got).toHaveLength(1);
      checkProduced(got[0], 0, [32]);
    } finally {
      await p.worker.terminate();
      await b.close();
    }
  });

  it('transport - embedded pollSync with atLeast returns only once that many frames are in', async () => {
    // 40 frames of 3 sizes, one of them larger than the 1 KiB ring (streamed in pieces, each piece
    // must wake the sleeper whatever count it waits for).
    const fabric = createEmbeddedFabric([[A, B]], [], { ringBytes: 1024 });
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    const p = startProducer(fabric.endpointConfig(A), A, [B], 40, [32, 4096, 8]);
    try {
      await p.next('ready');
      const got: Uint8Array[] = [];
      b.onFrame((f) => got.push(f));
      p.worker.postMessage('go');
      // one call: it returns with fewer only on its timeout, i.e. if a wake-up was lost (a producer
      // waiting for room in a ring whose receiver sleeps until more frames are in must wake it)
      expect(b.pollSync!(10_000, 40)).toBe(40);
      expect(got).toHaveLength(40);
      got.forEach((f, i) => checkProduced(f, i, [32, 4096, 8]));
    } finally {
      await p.worker.terminate();
      await b.close();
    }
  });

  it('transport - embedded across two real worker threads', async () => {
    const fabric = createEmbeddedFabric([[A, B]]);
    const ca = fabric.endpointConfig(A);
    const cb = fabric.endpointConfig(B);
    const frames = 300;
    const got = await runWorkerPair([ca, cb], frames);
    checkEchoes(got, frames, B);
  });

  it('transport - embedded workers blocked sending to each other through tiny rings still progress', async () => {
    // 1 KiB rings hold a few frames: the source blocks on A->B while the echo blocks on B->A; each
    // keeps collecting its own inbound ring while it waits, so neither waits for long.
    const fabric = createEmbeddedFabric([[A, B]], [], { ringBytes: 1024, sendTimeoutMs: 10_000 });
    const ca = fabric.endpointConfig(A);
    const cb = fabric.endpointConfig(B);
    const frames = 600;
    const got = await runWorkerPair([ca, cb], frames);
    checkEchoes(got, frames, B);
  });

  it('transport - embedded full ring blocks the producer until a slow consumer drains it; frames 3x the ring arrive intact', async () => {
    const ring = 4096;
    const sizes = [100, 3000, 3 * ring, 0, 2500, 5 * ring + 4, 20];
    const frames = 120;
    const fabric = createEmbeddedFabric([[A, B]], [], { ringBytes: ring });
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    const p = startProducer(fabric.endpointConfig(A), A, [B], frames, sizes);
    try {
      await p.next('ready');
      const received: Uint8Array[] = [];
      b.onFrame((f, src) => {
        expect(src).toBe(A);
        received.push(f);
      });
      p.worker.postMessage('go');
      // A slow consumer that never returns to the event loop: poll, then "compute" for 3 ms.
      const deadline = Date.now() + 30_000;
      while (received.length < frames && Date.now() < deadline) {
        b.pollSync!(100);
        blockFor(3);
      }
      expect(received).toHaveLength(frames);
      received.forEach((f, i) => checkProduced(f, i, sizes));
      const sent = await p.next('sent');
      expect(sent.stats!.framesSent).toBe(frames);
      expect(sent.stats!.creditStalls).toBeGreaterThan(frames / 4); // it had to wait for room, often
      expect(b.stats().framesReceived).toBe(frames);
    } finally {
      await p.worker.terminate();
      await b.close();
    }
  });

  it('transport - embedded frames many times the ring between endpoints of one thread', async () => {
    // The blocked sender collects a same-thread receiver itself, so even this cannot deadlock.
    const fabric = createEmbeddedFabric([[A, B]], [], { ringBytes: 1024, sendTimeoutMs: 2000 });
    const a = await openEndpoint(fabric.endpointConfig(A), A, { onError: (e) => errors.push(e.message) });
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    const errors: string[] = [];
    const sizes = [3 * 1024, 10_000, 4];
    const got: Uint8Array[] = [];
    b.onFrame((f) => got.push(f));
    for (let i = 0; i < 9; i++) {
      const n = sizes[i % 3];
      const payload = new Uint8Array(n);
      for (let j = 0; j < n; j++) payload[j] = (i * 7 + j) & 255;
      a.send(
        B,
        encodeFrame({ src: A, dst: B, step: i, tick: i, tensor: 'p', dtype: 'i32', shape: [n / 4], seq: i }, payload),
      );
    }
    while (b.pollSync!(0));
    expect(errors).toEqual([]);
    expect(got).toHaveLength(9);
    got.forEach((f, i) => checkProduced(f, i, sizes));
    await Promise.all([a.close(), b.close()]);
  });

  it('transport - embedded many producers into one consumer keep per-sender order', async () => {
    const producers = Array.from({ length: 6 }, (_, i) => `r1.n${i}.c0`);
    const frames = 200;
    const sizes = [64, 700, 1500, 9000];
    const fabric = createEmbeddedFabric(
      producers.map((p) => [p, B] as const),
      [],
      { ringBytes: (src, dst) => (dst === B ? 2048 : 1024) },
    );
    const b = await openEndpoint(fabric.endpointConfig(B), B);
    const ps = producers.map((id) => startProducer(fabric.endpointConfig(id), id, [B], frames, sizes));
    try {
      await Promise.all(ps.map((p) => p.next('ready')));
      const next = new Map(producers.map((p) => [p, 0]));
      let total = 0;
      const failures: unknown[] = [];
      const done = new Promise<void>((resolve) => {
        // async delivery (the event-loop path), under contention
        b.onFrame((f, src) => {
          try {
            const seq = next.get(src)!;
            checkProduced(f, seq, sizes);
            next.set(src, seq + 1);
          } catch (e) {
            failures.push(e);
          }
          if (++total === frames * producers.length) resolve();
        });
      });
      for (const p of ps) p.worker.postMessage('go');
      await done;
      expect(failures).toEqual([]);
      expect([...next.values()]).toEqual(producers.map(() => frames));
      for (const p of ps) expect((await p.next('sent')).stats!.framesSent).toBe(frames);
    } finally {
      await Promise.all(ps.map((p) => p.worker.terminate()));
      await b.close();
    }
  });

  it('transport - embedded send gives up on a receiver that never drains, and drops frames to a closed one', async () => {
    const fabric = createEmbeddedFabric(
      [
        [A, B],
        [A, C],
      ],
      [],
      { ringBytes: 1024, sendTimeoutMs: 300 },
    );
    const cfgA = fabric.endpointConfig(A) as EmbeddedTransportConfig;
    expect(Object.keys(cfgA.outbound).sort()).toEqual([B, C]);
    const b = await openEndpoint(fabric.endpointConfig(B), B); // never polls, no handler
    const c = await openEndpoint(fabric.endpointConfig(C), C);
    await c.close();
    const p = startProducer(cfgA, A, [C, B], 6, [200]); // 3 fit in B's ring, 3 time out
    try {
      await p.next('ready');
      p.worker.postMessage('go');
      const err = await p.next('error');
      expect(err.code).toBe('RACKEMU_ERR_TRANSPORT');
      expect(err.message).toMatch(/timed out/);
      const sent = await p.next('sent');
      expect(sent.stats!.framesSent).toBe(12);
    } finally {
      await p.worker.terminate();
      await b.close();
    }
  });
});

describe('transport embedded ring sizes', () => {
  // Hand-made traffic: frames of 60 and 100 bytes take 64 and 104 in a bundle, plus a 4-byte length
  // word each in the bundle's head: 176 bytes a step. Timing rule: 2 windows of (lookahead + 1) steps,
  // plus the head's marker and count (8) and the ring record's length word (4). Numeric rule: 4 frames.
  const traffic: PairTraffic[] = [
    { src: A, dst: B, frameBytes: [60, 100], lookahead: 255 }, // 2 * 256 * 176 + 12 = 90124 -> 128 KiB
    { src: A, dst: B, frameBytes: [60], lookahead: 255 }, // 2 * 256 * 68 + 12 = 34828 (the pair's smaller need)
    { src: C, dst: B, frameBytes: [60, 100], lookahead: 63 }, // 2 * 64 * 176 + 12 = 22540 -> 32 KiB
    { src: A, dst: C, frameBytes: [1000, 5000] }, // 4 * 5000 = 20000 -> 32 KiB
    { src: C, dst: A, frameBytes: [100] }, // 4 * 100 = 400 -> MIN_RING_BYTES
  ];

  it('transport - embedded rings sized from traffic: 4 largest frames, or 2 look-ahead windows as a bundle', () => {
    expect(traffic.map(trafficBytes)).toEqual([90124, 34828, 22540, 20000, 400]);
    expect(MIN_RING_BYTES).toBe(16 * 1024);
    const size = ringSizer({ traffic });
    const expected: Array<[string, string, number]> = [
      [A, B, 128 * 1024],
      [B, A, MIN_RING_BYTES], // no traffic
      [C, B, 32 * 1024],
      [B, C, MIN_RING_BYTES],
      [A, C, 32 * 1024],
      [C, A, MIN_RING_BYTES],
    ];
    for (const [src, dst, bytes] of expected) expect([src, dst, size(src, dst)]).toEqual([src, dst, bytes]);
    // the fabric's rings have those data areas (each ring's SharedArrayBuffer adds the same header)
    const fabric = createEmbeddedFabric(
      [
        [A, B],
        [C, B],
        [A, C],
      ],
      [],
      { traffic },
    );
    const configs = Object.fromEntries([A, B, C].map((id) => [id, fabric.endpointConfig(id)]));
    const headers = expected.map(([src, dst, bytes]) => configs[src].outbound[dst].byteLength - bytes);
    expect(new Set(headers).size).toBe(1);
    for (const [src, dst] of expected) expect(configs[dst].inbound[src]).toBe(configs[src].outbound[dst]);
  });

  it('transport - embedded traffic is checked: sizes, look-ahead, pairs, and not with ringBytes', () => {
    const bad = (traffic: PairTraffic[], ringBytes?: number) => () =>
      createEmbeddedFabric([[A, B]], [], { traffic, ringBytes });
    const code = expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' });
    expect(bad([{ src: A, dst: B, frameBytes: [0] }])).toThrow(code);
    expect(bad([{ src: A, dst: B, frameBytes: [64], lookahead: -1 }])).toThrow(code);
    expect(bad([{ src: A, dst: C, frameBytes: [64] }])).toThrow(code); // not in the pair list
    expect(bad([{ src: A, dst: B, frameBytes: [64] }], 4096)).toThrow(code);
    expect(bad([{ src: A, dst: A, frameBytes: [64] }])).not.toThrow(); // a self-pair needs no ring
  });

  it('transport - MIN_RING_BYTES, the smallest ring sized from traffic, is defined once: in the transport', () => {
    const src = fileURLToPath(new URL('../src', import.meta.url));
    const defining = readdirSync(src, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /\b(?:const|let|var)\s+MIN_RING_BYTES\b/.test(readFileSync(join(src, f), 'utf8')));
    expect(defining.map((f) => f.split(/[\\/]/).join('/'))).toEqual(['transport/ring-size.ts']);
  });
});
