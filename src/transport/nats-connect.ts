/**
 * Opening a chip's NATS endpoint: config checks, the connection (failures mapped to coded errors), and
 * the subscriptions confirmed by the server before anyone may send to the chip. Loaded lazily by
 * openEndpoint, so embedded-only workers never load the NATS client.
 */

import {
  connect,
  nkeyAuthenticator,
  nkeys,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { TransportError } from '../util/errors.js';
import { configError } from './errors.js';
import { NatsEndpoint } from './nats.js';
import { checkNatsAuth, describeNatsAuth, maskSecret, redactUrl } from './nats-auth.js';
import { checkRunId, chipToken } from './nats-subjects.js';
import {
  DEFAULT_WINDOW_BYTES,
  DEFAULT_WINDOW_FRAMES,
  type NatsAuth,
  type NatsBus,
  type NatsBusOptions,
  type NatsTransportConfig,
  type OpenEndpointOptions,
} from './types.js';

/** Servers as given: a list, or one string of comma-separated URLs (a cluster, as on the command line). */
function serverList(s: string | readonly string[]): string[] {
  const list = typeof s === 'string' ? s.split(',') : [...s];
  return list.map((u) => u.trim()).filter((u) => u.length > 0);
}

/** The connect() options that present `auth`, and how to name it in messages (an nkey by its public key). */
function authOptions(auth: NatsAuth | undefined): { opts: Partial<NodeConnectionOptions>; described: string } {
  switch (auth?.kind) {
    case undefined:
      return { opts: {}, described: describeNatsAuth(auth) };
    case 'user':
      return { opts: { user: auth.user, pass: auth.pass }, described: describeNatsAuth(auth) };
    case 'token':
      return { opts: { token: auth.token }, described: describeNatsAuth(auth) };
    case 'nkey': {
      const seed = new TextEncoder().encode(auth.seed);
      let publicKey: string;
      try {
        publicKey = nkeys.fromSeed(seed).getPublicKey();
      } catch {
        // the seed's checksum or encoding is wrong; its text stays out of the message
        throw configError('NATS credentials: the nkey seed is not a valid user seed (bad checksum or encoding)', {
          path: 'auth',
        });
      }
      return { opts: { authenticator: nkeyAuthenticator(seed) }, described: describeNatsAuth(auth, publicKey) };
    }
  }
}

interface ConnectFailure {
  readonly servers: string[];
  readonly timeoutMs: number;
  readonly chipId: string;
  readonly auth: NatsAuth | undefined;
  /** describeNatsAuth of `auth`. */
  readonly described: string;
}

/**
 * Map a nats.js connect failure to a coded error: refused credentials, unreachable servers, or anything
 * else. Servers print with their URL credentials masked; no message carries a secret.
 */
function connectError(cause: unknown, f: ConnectFailure): TransportError {
  const name = (cause as Error)?.name ?? '';
  const said = maskSecret((cause as Error)?.message ?? String(cause), f.auth);
  const text = `${name} ${said} ${String((cause as { code?: unknown })?.code ?? '')}`;
  const at = f.servers.map(redactUrl).join(', ');
  const details = { servers: f.servers.map(redactUrl), chip: f.chipId };
  if (
    name === 'AuthorizationError' ||
    name === 'UserAuthenticationExpiredError' ||
    /authorization violation|authentication (?:timeout|expired)/i.test(text)
  ) {
    const message = `NATS server at ${at} refused the connection of ${f.chipId}: ${said.toLowerCase()} (it presented ${f.described})`;
    return new TransportError('RACKEMU_ERR_NATS_AUTH', message, {
      cause,
      details: { ...details, auth: f.auth?.kind ?? 'none' },
    });
  }
  const refused = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|connection refused/i.test(text);
  const timedOut = !refused && /ETIMEDOUT|timeout|TimeoutError/i.test(text);
  const message = refused
    ? `no NATS server reachable at ${at} (start one, or use --nats spawn)`
    : timedOut
      ? `connecting to NATS at ${at} timed out after ${f.timeoutMs} ms (server overloaded or unreachable)`
      : `cannot connect to NATS at ${at}: ${said}`;
  return new TransportError(refused || timedOut ? 'RACKEMU_ERR_NATS_UNAVAILABLE' : 'RACKEMU_ERR_TRANSPORT', message, {
    cause,
    details,
  });
}

export async function openNatsEndpoint(
  config: NatsTransportConfig,
  chipId: string,
  opts: OpenEndpointOptions = {},
): Promise<NatsEndpoint> {
  checkRunId(config.runId);
  chipToken(chipId);
  const windowFrames = config.window?.frames ?? DEFAULT_WINDOW_FRAMES;
  const windowBytes = config.window?.bytes ?? DEFAULT_WINDOW_BYTES;
  if (
    !Number.isSafeInteger(windowFrames) ||
    windowFrames < 1 ||
    !Number.isSafeInteger(windowBytes) ||
    windowBytes < 1
  ) {
    throw configError(`credit window must be positive integers (frames ${windowFrames}, bytes ${windowBytes})`);
  }
  const servers = serverList(config.servers);
  if (servers.length === 0) throw configError('no NATS server given');
  const reconnect = config.reconnect ?? false;
  const auth = checkNatsAuth(config.auth);
  const credentials = authOptions(auth);
  let nc: NatsConnection;
  const timeoutMs = config.connectTimeoutMs ?? 5000;
  try {
    nc = await connect({
      servers,
      name: opts.name ?? `rackemu ${config.runId} ${chipId}`,
      timeout: timeoutMs,
      reconnect,
      maxReconnectAttempts: reconnect ? -1 : 0,
      ...credentials.opts,
    });
  } catch (cause) {
    throw connectError(cause, { servers, timeoutMs, chipId, auth, described: credentials.described });
  }
  const serverMax = nc.info?.max_payload ?? 1024 * 1024;
  const maxMsg = Math.min(serverMax, config.maxPayload ?? serverMax);
  const ep = new NatsEndpoint(nc, config.runId, chipId, { windowFrames, windowBytes, maxMsg }, opts.onError);
  try {
    // The SUBs must be registered at the server before anyone may send to this chip.
    await nc.flush();
  } catch (cause) {
    await nc.close().catch(() => undefined);
    throw new TransportError('RACKEMU_ERR_TRANSPORT', `NATS subscription of ${chipId} was not confirmed`, {
      cause,
      details: { servers: servers.map(redactUrl) },
    });
  }
  return ep;
}

/**
 * A plain NATS connection for the control plane (coordinator and host agents: control-channel.ts in
 * control/), with the same credentials, checks and coded connect errors as a chip's endpoint.
 */
export async function openNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const servers = serverList(options.servers);
  if (servers.length === 0) throw configError('no NATS server given');
  const auth = checkNatsAuth(options.auth);
  const credentials = authOptions(auth);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  let nc: NatsConnection;
  try {
    // the control plane rides out a server's restart (a cluster's other servers take over)
    nc = await connect({
      servers,
      name: options.name,
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      ...credentials.opts,
    });
  } catch (cause) {
    throw connectError(cause, { servers, timeoutMs, chipId: options.name, auth, described: credentials.described });
  }
  return {
    maxPayload: nc.info?.max_payload ?? 1024 * 1024,
    publish: (subject, data, reply) => nc.publish(subject, data, reply === undefined ? undefined : { reply }),
    subscribe: (subject, onMessage) => {
      const sub = nc.subscribe(subject, { callback: (err, msg) => (err ? undefined : onMessage(msg.data)) });
      return () => sub.unsubscribe();
    },
    flush: () => nc.flush(),
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
