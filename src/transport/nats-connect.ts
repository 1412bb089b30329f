/**
 * Opening a chip's NATS endpoint: config checks, the connection (failures mapped to coded errors), and
 * the subscriptions confirmed by the server before anyone may send to the chip. Loaded lazily by
 * openEndpoint, so embedded-only workers never load the NATS client.
 */

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TransportError } from '../util/errors.js';
import { configError } from './errors.js';
import { NatsEndpoint } from './nats.js';
import { checkRunId, chipToken } from './nats-subjects.js';
import {
  DEFAULT_WINDOW_BYTES,
  DEFAULT_WINDOW_FRAMES,
  type NatsTransportConfig,
  type OpenEndpointOptions,
} from './types.js';

function serverList(s: string | readonly string[]): string[] {
  return typeof s === 'string' ? [s] : [...s];
}

/** Map a nats.js connect failure to a coded error: unreachable servers vs. anything else. */
function connectError(cause: unknown, servers: string[], timeoutMs: number): TransportError {
  const text = `${(cause as Error)?.name ?? ''} ${(cause as Error)?.message ?? String(cause)} ${String((cause as { code?: unknown })?.code ?? '')}`;
  const refused = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|connection refused/i.test(text);
  const timedOut = !refused && /ETIMEDOUT|timeout|TimeoutError/i.test(text);
  const message = refused
    ? `no NATS server reachable at ${servers.join(', ')} (start one, or use --nats spawn)`
    : timedOut
      ? `connecting to NATS at ${servers.join(', ')} timed out after ${timeoutMs} ms (server overloaded or unreachable)`
      : `cannot connect to NATS at ${servers.join(', ')}: ${(cause as Error)?.message ?? String(cause)}`;
  return new TransportError(refused || timedOut ? 'RACKEMU_ERR_NATS_UNAVAILABLE' : 'RACKEMU_ERR_TRANSPORT', message, {
    cause,
    details: { servers },
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
  let nc: NatsConnection;
  const timeoutMs = config.connectTimeoutMs ?? 5000;
  try {
    nc = await connect({
      servers,
      name: opts.name ?? `rackemu ${config.runId} ${chipId}`,
      timeout: timeoutMs,
      reconnect,
      maxReconnectAttempts: reconnect ? -1 : 0,
    });
  } catch (cause) {
    throw connectError(cause, servers, timeoutMs);
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
      details: { servers },
    });
  }
  return ep;
}
