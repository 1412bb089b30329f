import { nkeys } from '@nats-io/transport-node';
import { readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  openEndpoint,
  spawnNatsServer,
  type ChipEndpoint,
  type NatsAuth,
  type NatsTransportConfig,
  type SpawnedNatsServer,
} from '../src/transport/internal.js';
import type { TransportError } from '../src/util/errors.js';

const A = 'r0.n0.c0';
const B = 'r0.n0.c1';

const seedOf = (kp: ReturnType<typeof nkeys.createUser>) => new TextDecoder().decode(kp.getSeed());
const NKEY = nkeys.createUser();
const OTHER_NKEY = nkeys.createUser();

/** Each kind of credentials: what the server requires, and wrong ones of the same kind (with their secrets). */
const KINDS: { name: string; auth: NatsAuth; wrong: NatsAuth[]; secrets: string[] }[] = [
  {
    name: 'token',
    auth: { kind: 'token', token: 'tok-3f9a1c77e2' },
    wrong: [{ kind: 'token', token: 'tok-wrong-51d0' }],
    secrets: ['tok-3f9a1c77e2', 'tok-wrong-51d0'],
  },
  {
    name: 'user/password',
    // quotes, a backslash and a $ must survive the server's config file
    auth: { kind: 'user', user: 'rack"emu', pass: 'pw-8c2e$x\\y' },
    wrong: [
      { kind: 'user', user: 'rack"emu', pass: 'pw-wrong-77a1' },
      { kind: 'user', user: 'nobody', pass: 'pw-8c2e$x\\y' },
    ],
    secrets: ['pw-8c2e$x\\y', 'pw-wrong-77a1'],
  },
  {
    name: 'nkey',
    auth: { kind: 'nkey', seed: seedOf(NKEY) },
    wrong: [{ kind: 'nkey', seed: seedOf(OTHER_NKEY) }],
    secrets: [seedOf(NKEY), seedOf(OTHER_NKEY)],
  },
];

const servers = new Map<string, SpawnedNatsServer>();
const open: ChipEndpoint[] = [];
let runs = 0;
let confsBefore: Set<string>;

async function natsConfDirs(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((d) => d.startsWith('rackemu-nats-')).map((d) => join(tmpdir(), d));
}

beforeAll(async () => {
  confsBefore = new Set(await natsConfDirs());
  const spawned = await Promise.all(KINDS.map((k) => spawnNatsServer({ auth: k.auth })));
  KINDS.forEach((k, i) => servers.set(k.name, spawned[i]));
});

afterAll(async () => {
  await Promise.all(open.map((e) => e.close()));
  await Promise.all([...servers.values()].map((s) => s.stop()));
});

function config(url: string, auth?: NatsAuth): NatsTransportConfig {
  // a long connect timeout: a refusal must come from the server at once, not from this timer
  return { kind: 'nats', servers: url, runId: `auth${process.pid}-${runs++}`, connectTimeoutMs: 60_000, auth };
}

function frame(src: string, dst: string, seq: number): Uint8Array {
  const payload = new Uint8Array(64).fill(seq);
  return encodeFrame({ src, dst, step: 1, tick: seq, tensor: 't', dtype: 'i32', shape: [16], seq }, payload);
}

function collect(ep: ChipEndpoint, n: number): Promise<Array<[string, number, string]>> {
  const got: Array<[string, number, string]> = [];
  return new Promise((resolve) =>
    ep.onFrame((f, src) => {
      const d = decodeFrame(f);
      got.push([src, d.header.seq, d.integrity]);
      if (got.length === n) resolve(got);
    }),
  );
}

/** openEndpoint's rejection, and how long it took. */
async function refusal(cfg: NatsTransportConfig): Promise<{ err: TransportError; ms: number }> {
  const t0 = performance.now();
  const err = await openEndpoint(cfg, A).then(
    (ep) => {
      open.push(ep);
      throw new Error('the server accepted the connection');
    },
    (e: TransportError) => e,
  );
  return { err, ms: performance.now() - t0 };
}

function expectNoSecret(err: TransportError, secrets: string[]): void {
  const shown = `${err.message}\n${JSON.stringify(err.details)}\n${err.stack ?? ''}`;
  for (const s of secrets) expect(shown).not.toContain(s);
}

describe('transport nats auth', () => {
  for (const k of KINDS) {
    it(`transport - NATS ${k.name} auth: the right credentials exchange frames, none or wrong ones are RACKEMU_ERR_NATS_AUTH at once`, async () => {
      const server = servers.get(k.name)!;
      const cfg = config(server.url, k.auth);
      const errors: TransportError[] = [];
      const [a, b] = await Promise.all([A, B].map((c) => openEndpoint(cfg, c, { onError: (e) => errors.push(e) })));
      open.push(a, b);
      const atA = collect(a, 5);
      const atB = collect(b, 5);
      for (let i = 0; i < 5; i++) {
        a.send(B, frame(A, B, i));
        b.send(A, frame(B, A, i));
      }
      expect(await atB).toEqual([0, 1, 2, 3, 4].map((i) => [A, i, 'ok']));
      expect(await atA).toEqual([0, 1, 2, 3, 4].map((i) => [B, i, 'ok']));
      expect(errors).toEqual([]);

      for (const auth of [undefined, ...k.wrong]) {
        const { err, ms } = await refusal(config(server.url, auth));
        expect(err.code, JSON.stringify(auth?.kind)).toBe('RACKEMU_ERR_NATS_AUTH');
        expect(err.exitCode).toBe(77);
        expect(ms).toBeLessThan(3000);
        expect(err.message).toContain(server.url);
        expect(err.message).toMatch(/authorization violation/);
        expect(err.message).toContain(auth ? `presented ${auth.kind === 'nkey' ? 'nkey U' : ''}` : 'no credentials');
        expect(err.details).toMatchObject({ auth: auth?.kind ?? 'none', chip: A });
        expectNoSecret(err, k.secrets);
      }
    });
  }

  it('transport - a spawned server with credentials keeps them in a 0600 config file in a 0700 directory', async () => {
    const token = KINDS[0].auth as { token: string };
    const mine: string[] = [];
    for (const dir of await natsConfDirs()) {
      if (confsBefore.has(dir)) continue;
      const text = await readFile(join(dir, 'nats.conf'), 'utf8').catch(() => '');
      if (text.includes(token.token)) mine.push(dir);
    }
    expect(mine).toHaveLength(1);
    expect((await stat(join(mine[0], 'nats.conf'))).mode & 0o777).toBe(0o600);
    expect((await stat(mine[0])).mode & 0o777).toBe(0o700);
    const nkeyConf = await Promise.all(
      (await natsConfDirs())
        .filter((d) => !confsBefore.has(d))
        .map((d) => readFile(join(d, 'nats.conf'), 'utf8').catch(() => '')),
    );
    // an nkey server knows the public key only
    expect(nkeyConf.some((t) => t.includes(NKEY.getPublicKey()))).toBe(true);
    expect(nkeyConf.some((t) => t.includes(seedOf(NKEY)))).toBe(false);
  });

  it('transport - malformed NATS credentials are config errors that do not echo the secret', async () => {
    const url = servers.get('token')!.url;
    const seed = seedOf(NKEY);
    // a character inside the key (the last one also holds 2 padding bits, which no checksum sees)
    const badChecksum = seed.slice(0, 10) + (seed[10] === 'A' ? 'B' : 'A') + seed.slice(11);
    const cases: [unknown, string | null][] = [
      [{ kind: 'nkey', seed: badChecksum }, badChecksum],
      [{ kind: 'nkey', seed: 'SUnot-a-seed-at-all' }, 'SUnot-a-seed-at-all'],
      [{ kind: 'token', token: '' }, null],
      [{ kind: 'user', user: 'u', pass: '' }, null],
      [{ kind: 'password', pass: 'p-1e2d' }, 'p-1e2d'],
    ];
    for (const [auth, secret] of cases) {
      const err = await openEndpoint(config(url, auth as NatsAuth), A).catch((e: TransportError) => e);
      expect(err, JSON.stringify(auth)).toMatchObject({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' });
      if (secret !== null) expectNoSecret(err as TransportError, [secret]);
    }
    const bcrypt = spawnNatsServer({ auth: { kind: 'user', user: 'u', pass: '$2a$11$abc' } }).catch((e) => e);
    expect(await bcrypt).toMatchObject({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' });
    const badSeed = await spawnNatsServer({ auth: { kind: 'nkey', seed: badChecksum } }).catch((e) => e);
    expect(badSeed).toMatchObject({ code: 'RACKEMU_ERR_TRANSPORT_CONFIG' });
    expectNoSecret(badSeed, [badChecksum]);
  });

  it('transport - credentials inside a server URL are masked in errors', async () => {
    const err = await openEndpoint(
      { kind: 'nats', servers: 'nats://alice:hunter2-9f@127.0.0.1:1', runId: 'mask' },
      A,
    ).catch((e: TransportError) => e);
    expect(err).toMatchObject({ code: 'RACKEMU_ERR_NATS_UNAVAILABLE' });
    expect((err as TransportError).message).toContain('nats://***@127.0.0.1:1');
    expectNoSecret(err as TransportError, ['hunter2-9f']);
  });
});
