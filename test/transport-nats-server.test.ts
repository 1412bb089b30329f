import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { measureRawRate, openEndpoint, spawnNatsServer } from '../src/transport/internal.js';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('transport nats-server', () => {
  it('transport - spawnNatsServer reports a missing binary with an install hint (PATH override)', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'rackemu-nopath-'));
    const saved = { PATH: process.env.PATH, RACKEMU_NATS_SERVER: process.env.RACKEMU_NATS_SERVER };
    process.env.PATH = empty;
    delete process.env.RACKEMU_NATS_SERVER;
    try {
      const err = await spawnNatsServer().catch((e) => e);
      expect(err.code).toBe('RACKEMU_ERR_NATS_UNAVAILABLE');
      expect(err.message).toMatch(/apt-get install -y nats-server/);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.RACKEMU_NATS_SERVER !== undefined) process.env.RACKEMU_NATS_SERVER = saved.RACKEMU_NATS_SERVER;
      await rm(empty, { recursive: true, force: true });
    }
    const err2 = await spawnNatsServer({ bin: join(empty, 'nats-server') }).catch((e) => e);
    expect(err2.code).toBe('RACKEMU_ERR_NATS_UNAVAILABLE');
  });

  it('transport - spawnNatsServer starts on a free port with the asked max_payload and stops', async () => {
    const s = await spawnNatsServer({ maxPayload: 2048 });
    expect(s.url).toBe(`nats://127.0.0.1:${s.port}`);
    const ep = await openEndpoint({ kind: 'nats', servers: s.url, runId: 'srv' }, 'r0.n0.c0');
    expect((ep as unknown as { maxMessageBytes: number }).maxMessageBytes).toBe(2048);
    await ep.close();
    await s.stop();
    await s.stop(); // idempotent
    expect(await refused(s.port)).toBe(true);
  });

  it('transport - raw rate is measured for embedded and NATS', async () => {
    for (const kind of ['embedded', 'nats'] as const) {
      const r = await measureRawRate(kind, { frameBytes: 8192, frames: 2000 });
      expect(r.framesPerS).toBeGreaterThan(0);
      expect(Number.isFinite(r.framesPerS)).toBe(true);
      expect(r.bytesPerS).toBeCloseTo(r.framesPerS * 8192, 0);
    }
  });
});
