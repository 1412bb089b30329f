import { type NatsAuth, openNatsBus } from '../transport/index.js';
import type { WeightDtype } from '../model/config.js';
import { logger } from '../util/log.js';
import type { HostChipSpec } from './host.js';
import { HostRoster } from './host-roster.js';
import { NatsHost } from './nats-host.js';

/** Process and remote isolation: how long the coordinator waits for every host agent to join. */
export const DEFAULT_JOIN_TIMEOUT_MS = 120_000;

/** The coordinator's NATS side for host agents it drives over NATS: the connection, the hosts, their roster. */
export interface ControlPlane {
  readonly hosts: NatsHost[];
  readonly roster: HostRoster;
  close(): Promise<void>;
}

/** What the control plane needs of the deployment's options. */
export interface ControlOptions {
  readonly isolation: 'thread' | 'process' | 'remote';
  readonly natsUrl?: string;
  readonly natsAuth?: NatsAuth;
  readonly model: { readonly spec: string; readonly dtype: WeightDtype };
  readonly hostMetricsHost?: string;
}

/**
 * The coordinator's side of host agents driven over NATS (control-channel.ts): one NatsHost per host,
 * started as children (process isolation) or awaited from anywhere (remote), and the roster of joins.
 */
export async function controlPlane(
  opts: ControlOptions,
  deployment: string,
  byHost: Map<string, HostChipSpec[]>,
): Promise<ControlPlane> {
  const servers = opts.natsUrl!;
  const bus = await openNatsBus({ servers, auth: opts.natsAuth, name: `rackemu coordinator ${deployment}` });
  const spawn = opts.isolation === 'process' ? { servers, auth: opts.natsAuth } : undefined;
  const hosts = [...byHost].map(
    ([hostId, list]) =>
      new NatsHost(hostId, list, { bus, deployment, model: opts.model, metricsHost: opts.hostMetricsHost, spawn }),
  );
  const roster = new HostRoster(bus, deployment, hosts);
  await bus.flush();
  for (const h of hosts) h.spawn();
  if (opts.isolation === 'remote') {
    logger().info(
      { deployment, hosts: hosts.length },
      `waiting for ${hosts.length} host agent(s) to join deployment ${deployment}`,
    );
  }
  return {
    hosts,
    roster,
    close: async () => {
      roster.close();
      await bus.close();
    },
  };
}
