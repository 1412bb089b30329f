import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEchoes, runWorkerPair } from './fixtures/transport-pair.js';
import {
  bundleCount,
  decodeFrame,
  encodeBundle,
  encodeFrame,
  freePort,
  openEndpoint,
  spawnNatsServer,
  type ChipEndpoint,
  type NatsTransportConfig,
  type SpawnedNatsServer,
} from '../src/transport/internal.js';
import type { TransportError } from '../src/util/errors.js';

const A = 'r0.n0.c0';
const B = 'r0.n0.c1';
const C = 'r1.n3.c7';

let server: SpawnedNatsServer;
let small: SpawnedNatsServer;
let runs = 0;
const open: ChipEndpoint[] = [];

beforeAll(async () => {
  [server, small] = await Promise.all([spawnNatsServer(), spawnNatsServer({ maxPayload: 4096 })]);
});

afterAll(async () => {
  await Promise.all(open.map((e) => e.close()));
  await Promise.all([server?.stop(), small?.stop()]);
});

function config(url: string, extra: Partial<NatsTransportConfig> = {}): NatsTransportConfig {
  return { kind: 'nats', servers: url, runId: `t${process.pid}-${runs++}`, ...extra };
}

async function endpoint(cfg: NatsTransportConfig, chip: string, errors?: TransportError[]): Promise<ChipEndpoint> {
  const e = await openEndpoint(cfg, chip, { onError: (err) => errors?.push(err) });
  open.push(e);
  return e;
}

function bytesFrame(src: string, dst: string, seq: number, n: number): Buffer {
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = (i * 7 + seq * 13) & 0xff;
  return encodeFrame({ src, dst, step: 1, tick: seq, tensor: `t${seq}`, dtype: 'i32', shape: [n / 4], seq }, p);
}

/** Collect `n` frames on `ep` as [src, seq, integrity, length]. */
function collect(ep: ChipEndpoint, n: number, onEach?: () => void): Promise<Array<[string, number, string, number]>> {
  const got: Array<[string, number, string, number]> = [];
  return new Promise((resolve) =>
    ep.onFrame((f, src) => {
      const d = decodeFrame(f);
      got.push([src, d.header.seq, d.integrity, f.length]);
      onEach?.();
      if (got.length === n) resolve(got);
    }),
  );
}

describe('transport nats', () => {
  it('transport - NATS between two endpoints on a spawned server', async () => {
    const cfg = config(server.url);
    const errors: TransportError[] = [];
    const [a, b] = await Promise.all([endpoint(cfg, A, errors), endpoint(cfg, B, errors)]);
    const atB = collect(b, 50);
    const atA = collect(a, 50);
    for (let i = 0; i < 50; i++) {
      a.send(B, bytesFrame(A, B, i, 1024));
      b.send(A, bytesFrame(B, A, i, 64));
    }
    const [gb, ga] = await Promise.all([atB, atA]);
    expect(gb.map((g) => [g[0], g[1], g[2]])).toEqual([...Array(50).keys()].map((i) => [A, i, 'ok']));
    expect(ga.map((g) => [g[0], g[1], g[2]])).toEqual([...Array(50).keys()].map((i) => [B, i, 'ok']));
    await Promise.all([a.flush(), b.flush()]);
    expect(a.stats()).toMatchObject({ framesSent: 50, framesReceived: 50, queued: 0 });
    expect(errors).toEqual([]);
  });

  it('transport - NATS chunks a 3 MiB frame over the default 1 MiB max payload', async () => {
    const cfg = config(server.url);
    const [a, b] = await Promise.all([endpoint(cfg, A), endpoint(cfg, C)]);
    const got = collect(b, 3);
    const big = bytesFrame(A, C, 1, 3 * 1024 * 1024);
    const expected = Buffer.from(big); // send takes ownership of `big`
    a.send(C, bytesFrame(A, C, 0, 16));
    a.send(C, big);
    a.send(C, bytesFrame(A, C, 2, 16));
    const g = await got;
    expect(g.map((x) => [x[0], x[1], x[2]])).toEqual([
      [A, 0, 'ok'],
      [A, 1, 'ok'],
      [A, 2, 'ok'],
    ]);
    expect(g[1][3]).toBe(expected.length);
    expect(a.stats().bytesSent).toBe(expected.length + 2 * bytesFrame(A, C, 0, 16).length);
  });

  it('transport - server with a small max_payload: every frame chunked, reassembled, in order per sender', async () => {
    const cfg = config(small.url);
    const errors: TransportError[] = [];
    const [a, c, b] = await Promise.all([endpoint(cfg, A, errors), endpoint(cfg, C, errors), endpoint(cfg, B, errors)]);
    const sizes = [4, 4000, 4096, 20_000, 100_000, 12, 65_536];
    const n = 40;
    const got = collect(b, 2 * n);
    const sent = new Map<string, Buffer>();
    for (let i = 0; i < n; i++) {
      for (const [src, ep] of [
        [A, a],
        [C, c],
      ] as const) {
        const f = bytesFrame(src, B, i, sizes[(i + (src === C ? 3 : 0)) % sizes.length]);
        sent.set(`${src}#${i}`, Buffer.from(f));
        ep.send(B, f);
      }
    }
    const g = await got;
    for (const src of [A, C]) {
      const mine = g.filter((x) => x[0] === src);
      expect(mine.map((x) => x[1])).toEqual([...Array(n).keys()]);
      for (const x of mine) {
        expect(x[2]).toBe('ok');
        expect(x[3]).toBe(sent.get(`${src}#${x[1]}`)!.length);
      }
    }
    expect(errors).toEqual([]);
  });

  it('transport - NATS sendCopy lets the caller reuse its buffer at once', async () => {
    const cfg = config(server.url);
    const [a, b] = await Promise.all([endpoint(cfg, A), endpoint(cfg, B)]);
    const got = collect(b, 20);
    const scratch = Buffer.alloc(256);
    const sent: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const f = bytesFrame(A, B, i, 64);
      f.copy(scratch);
      sent.push(Buffer.from(f));
      a.sendCopy(B, scratch.subarray(0, f.length));
      scratch.fill(0xee); // overwritten before nats.js writes to the socket
    }
    const g = await got;
    expect(g.map((x) => [x[1], x[2], x[3]])).toEqual(sent.map((f, i) => [i, 'ok', f.length]));
  });

  it('transport - NATS cork sends held frames as bundles within the max payload, big frames chunked, order kept', async () => {
    const cfg = config(small.url); // max_payload 4096
    const errors: TransportError[] = [];
    const [a, b, c] = await Promise.all([endpoint(cfg, A, errors), endpoint(cfg, B, errors), endpoint(cfg, C, errors)]);
    const sizes = [4, 400, 4000, 12, 100_000, 8, 8, 1000, 3000];
    const n = 45;
    const atB = collect(b, n);
    const atC = collect(c, 2);
    const sent = new Map<number, Buffer>();
    a.cork();
    for (let i = 0; i < n; i++) {
      const f = bytesFrame(A, B, i, sizes[i % sizes.length]);
      sent.set(i, Buffer.from(f));
      a.send(B, f);
    }
    a.send(C, bytesFrame(A, C, 0, 16));
    a.send(C, bytesFrame(A, C, 1, 16));
    await new Promise((r) => setTimeout(r, 50));
    expect(a.stats().messagesSent).toBe(0); // held
    a.uncork();
    const [gb, gc] = await Promise.all([atB, atC]);
    expect(gb.map((x) => [x[0], x[1], x[2], x[3]])).toEqual(
      [...Array(n).keys()].map((i) => [A, i, 'ok', sent.get(i)!.length]),
    );
    expect(gc.map((x) => x[1])).toEqual([0, 1]);
    const st = a.stats();
    // the 100 kB frames go chunked (25 chunks each); the small ones share bundles of at most 4096 bytes:
    // fewer messages than frames, at least as many as their bytes need
    const big = [...sent.values()].filter((f) => f.length > 4096);
    const little = [...sent.values()].filter((f) => f.length <= 4096);
    const chunks = big.reduce((k, f) => k + Math.ceil(f.length / (4096 - 40)), 0);
    const littleBytes = little.reduce((k, f) => k + f.length, 0) + 2 * bytesFrame(A, C, 0, 16).length;
    expect(st.messagesSent).toBeGreaterThanOrEqual(chunks + Math.ceil(littleBytes / 4096));
    expect(st.messagesSent).toBeLessThan(chunks + little.length + 2);
    expect(st.framesSent).toBe(n + 2);
    expect(b.stats().framesReceived).toBe(n);
    expect(errors).toEqual([]);
  });

  it('transport - NATS bundles: one message (chunked over the max payload), taken whole or delivered frame by frame, order kept', async () => {
    const cfg = config(small.url); // max_payload 4096
    const errors: TransportError[] = [];
    const [a, b] = await Promise.all([endpoint(cfg, A, errors), endpoint(cfg, B, errors)]);
    const offered: Array<[string, number]> = [];
    let take = true;
    b.onBundle((bundle, src) => {
      offered.push([src, bundleCount(bundle)]);
      return take;
    });
    const seqs = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
    const framesOf = (from: number, n: number) => seqs(from, n).map((i) => bytesFrame(A, B, i, 40));
    // taken whole: nothing reaches onFrame; then a frame, and a declined bundle larger than a message
    const first = collect(b, 1 + 200);
    a.sendBundle(B, encodeBundle(framesOf(0, 3)));
    await new Promise((r) => setTimeout(r, 100));
    take = false;
    const big = encodeBundle(framesOf(4, 200));
    expect(big.length).toBeGreaterThan(4096);
    a.cork();
    a.send(B, bytesFrame(A, B, 3, 40));
    a.sendBundle(B, big); // corked: the held frame leaves first, then the bundle as its own message
    a.uncork();
    const got = await first;
    expect(got.map((g) => [g[0], g[1], g[2]])).toEqual(seqs(3, 201).map((i) => [A, i, 'ok']));
    expect(offered).toEqual([
      [A, 3],
      [A, 200],
    ]);
    expect(a.stats().framesSent).toBe(204);
    expect(b.stats().framesReceived).toBe(204);
    expect(errors).toEqual([]);
  });

  it('transport - credit flow control: a slow receiver stalls the sender, in-flight stays bounded, order kept', async () => {
    const W = 8;
    const cfg = config(server.url, { window: { frames: W } });
    const [tx, rx] = await Promise.all([endpoint(cfg, A), endpoint(cfg, B)]);
    const total = 200;
    let maxOutstanding = 0;
    const got = collect(rx, total, () => {
      // Slow receiver: ~1 ms of work per frame.
      const until = performance.now() + 1;
      while (performance.now() < until);
      const s = tx.stats();
      const published = s.framesSent - s.queued; // no chunking here: one message per frame
      maxOutstanding = Math.max(maxOutstanding, published - rx.stats().framesReceived);
    });
    for (let i = 0; i < total; i++) tx.send(B, bytesFrame(A, B, i, 1024));
    // send() returned at once; everything beyond the window waits at the sender, not in the socket
    expect(tx.stats()).toMatchObject({ queued: total - W, creditStalls: 1 });
    await tx.flush();
    const g = await got;
    expect(g.map((x) => x[1])).toEqual([...Array(total).keys()]);
    const s = tx.stats();
    expect(s.maxInFlight).toBe(W);
    expect(maxOutstanding).toBeLessThanOrEqual(W);
    expect(s.creditStalls).toBeGreaterThanOrEqual(1);
    expect(s.queued).toBe(0);
  });

  it('transport - the byte window bounds in-flight bytes too', async () => {
    const cfg = config(server.url, { window: { frames: 1000, bytes: 16 * 1024 } });
    const [tx, rx] = await Promise.all([endpoint(cfg, A), endpoint(cfg, B)]);
    const got = collect(rx, 50);
    const len = bytesFrame(A, B, 0, 4000).length;
    for (let i = 0; i < 50; i++) tx.send(B, bytesFrame(A, B, i, 4000));
    expect(tx.stats().queued).toBe(50 - Math.floor((16 * 1024) / len));
    await tx.flush();
    expect((await got).map((x) => x[1])).toEqual([...Array(50).keys()]);
    expect(tx.stats().maxInFlight).toBe(Math.floor((16 * 1024) / len));
  });

  it('transport - NATS chips in two real worker threads', async () => {
    const cfg = config(server.url);
    const got = await runWorkerPair([cfg, cfg], 300);
    checkEchoes(got, 300, B);
  });

  it('transport - a frame to a chip that is not listening is reported as lost', async () => {
    const cfg = config(server.url);
    const errors: TransportError[] = [];
    const a = await endpoint(cfg, A, errors);
    const reported = new Promise<TransportError>((r) => a.onError(r));
    a.send('r9.n9.c9', bytesFrame(A, 'r9.n9.c9', 0, 16));
    const e = await reported;
    expect(e.code).toBe('RACKEMU_ERR_TRANSPORT');
    expect(e.details.status).toBe(503);
  });

  it('transport - connection errors carry codes and causes', async () => {
    const closed = await freePort();
    const err = await openEndpoint(
      { kind: 'nats', servers: `nats://127.0.0.1:${closed}`, runId: 'x', connectTimeoutMs: 2000 },
      A,
    ).catch((e) => e);
    expect(err.code).toBe('RACKEMU_ERR_NATS_UNAVAILABLE');
    expect(err.cause).toBeDefined();
    const bad = await openEndpoint({ kind: 'nats', servers: 'nats://127.0.0.1:99999', runId: 'x' }, A).catch((e) => e);
    expect(bad.code).toBe('RACKEMU_ERR_TRANSPORT');
    expect(bad.cause).toBeDefined();
    await expect(openEndpoint({ kind: 'nats', servers: server.url, runId: 'has.dot' }, A)).rejects.toMatchObject({
      code: 'RACKEMU_ERR_TRANSPORT_CONFIG',
    });
    await expect(openEndpoint({ kind: 'nats', servers: server.url, runId: 'ok' }, 'bad_chip')).rejects.toMatchObject({
      code: 'RACKEMU_ERR_TRANSPORT_CONFIG',
    });
    const a = await endpoint(config(server.url), A);
    expect(() => a.send('r0 n0', new Uint8Array(8))).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' }),
    );
  });
});
