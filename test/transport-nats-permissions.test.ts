import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditSubject, dataSubject } from '../src/transport/nats-subjects.js';
import {
  encodeFrame,
  openEndpoint,
  openNatsBus,
  spawnNatsServer,
  type ChipEndpoint,
  type NatsAuth,
  type SpawnedNatsServer,
} from '../src/transport/internal.js';
import type { TransportError } from '../src/util/errors.js';

/**
 * No anonymous access, and deployments kept apart: a nats-server whose users may only publish and
 * subscribe in their own deployment's subjects (rackemu.<deployment>.>), as docs/cluster.md sets up a
 * cluster. A client without credentials cannot connect; one with another deployment's credentials
 * cannot put a frame into a chip's subject.
 */

const A = 'r0.n0.c0';
const B = 'r0.n0.c1';
const userA: NatsAuth = { kind: 'user', user: 'deploy-a', pass: 'pw-a-8d2f' };
const userB: NatsAuth = { kind: 'user', user: 'deploy-b', pass: 'pw-b-51c9' };

const frame = (seq: number) =>
  encodeFrame(
    { src: A, dst: B, step: 0, tick: 10, tensor: 't', dtype: 'f32', shape: [1, 2], seq },
    new Uint8Array(new Float32Array([1, 2]).buffer),
  );

describe('transport nats permissions', () => {
  let server: SpawnedNatsServer;
  beforeAll(async () => {
    server = await spawnNatsServer({
      deploymentUsers: [
        { user: 'deploy-a', pass: 'pw-a-8d2f', deployment: 'dep-a' },
        { user: 'deploy-b', pass: 'pw-b-51c9', deployment: 'dep-b' },
      ],
    });
  });
  afterAll(() => server?.stop());

  it("transport - a deployment's credentials reach its chips; another deployment's cannot publish into them", async () => {
    const cfg = { kind: 'nats' as const, servers: server.url, runId: 'dep-a', auth: userA };
    const received: Uint8Array[] = [];
    const [a, b]: ChipEndpoint[] = await Promise.all([openEndpoint(cfg, A), openEndpoint(cfg, B)]);
    b.onFrame((f) => received.push(f.slice()));
    try {
      a.send(B, frame(0));
      await a.flush();
      // a client forges a frame into deployment a's chip subject, as chip A would send it (its credit
      // subject as the reply): deployment b's credentials are refused it; deployment a's (the control
      // case, showing the forgery would otherwise arrive) are not
      const forge = async (auth: NatsAuth, seq: number) => {
        const bus = await openNatsBus({ servers: server.url, auth, name: 'forger' });
        bus.publish(dataSubject('dep-a', B), frame(seq), creditSubject('dep-a', A));
        await bus.flush().catch(() => undefined);
        await bus.close();
      };
      await forge(userB, 1);
      a.send(B, frame(2));
      await a.flush();
      const until = Date.now() + 5000;
      while (received.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      // the two frames of deployment a, in order; deployment b's forgery never arrived
      expect(received.map((f) => Buffer.from(f).equals(frame(0)) || Buffer.from(f).equals(frame(2)))).toEqual([
        true,
        true,
      ]);
      expect(received).toHaveLength(2);
      await forge(userA, 3);
      const later = Date.now() + 5000;
      while (received.length < 3 && Date.now() < later) await new Promise((r) => setTimeout(r, 20));
      expect(Buffer.from(received[2] ?? []).equals(frame(3))).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('transport - a client without credentials, or with a wrong password, is refused with a code', async () => {
    const none = await openEndpoint({ kind: 'nats', servers: server.url, runId: 'dep-a' }, A).catch(
      (e: TransportError) => e,
    );
    expect((none as TransportError).code).toBe('RACKEMU_ERR_NATS_AUTH');
    const wrong = await openEndpoint(
      { kind: 'nats', servers: server.url, runId: 'dep-a', auth: { ...userA, pass: 'not-it' } as NatsAuth },
      A,
    ).catch((e: TransportError) => e);
    expect((wrong as TransportError).code).toBe('RACKEMU_ERR_NATS_AUTH');
    expect((wrong as TransportError).message).not.toContain('not-it');
  });
});
