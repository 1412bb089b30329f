/**
 * openEndpoint: the one call a chip worker makes to join the transport. The NATS client is imported
 * only when a NATS config arrives, so embedded-only workers never load it.
 */

import { EmbeddedEndpoint } from './embedded.js';
import { configError } from './errors.js';
import type { ChipEndpoint, NatsBus, NatsBusOptions, OpenEndpointOptions, TransportConfig } from './types.js';

/**
 * Open chip `chipId`'s endpoint. Works in the main thread, a worker thread (config from workerData) or
 * a child process (NATS only: shared memory does not cross processes). Resolves once the endpoint can
 * receive; the caller must wait for every chip's endpoint before any chip sends.
 * Rejects with TransportError: RACKEMU_ERR_TRANSPORT_CONFIG (bad config), RACKEMU_ERR_NATS_UNAVAILABLE
 * (no server reachable), RACKEMU_ERR_NATS_AUTH (the server refused the credentials, or their absence),
 * RACKEMU_ERR_TRANSPORT (other connection failures).
 */
export async function openEndpoint(
  config: TransportConfig,
  chipId: string,
  opts: OpenEndpointOptions = {},
): Promise<ChipEndpoint> {
  switch (config?.kind) {
    case 'embedded': {
      if (config.chipId !== chipId) {
        const message = `embedded config belongs to ${config.chipId}, not ${chipId}`;
        throw configError(message, { expected: chipId, got: config.chipId });
      }
      return new EmbeddedEndpoint(config, opts.onError, opts.delivery);
    }
    case 'nats': {
      const { openNatsEndpoint } = await import('./nats-connect.js');
      return openNatsEndpoint(config, chipId, opts);
    }
    default: {
      const kind = JSON.stringify((config as { kind?: unknown })?.kind);
      throw configError(`unknown transport kind ${kind}`, { expected: 'embedded | nats' });
    }
  }
}

/** A control-plane NATS connection (nats-connect.ts; the NATS client loads only when one is opened). */
export async function openNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const { openNatsBus: open } = await import('./nats-connect.js');
  return open(options);
}
