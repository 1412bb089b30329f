import type { NatsBus } from '../transport/index.js';
import { RunError } from '../util/errors.js';
import { ControlReassembler, encodeControl, joinSubject, ordinalSubject, type JoinMessage } from './control-channel.js';
import type { NatsHost } from './nats-host.js';

/**
 * The coordinator's list of the host agents a Plan needs, as they join over NATS: a join by host id
 * marks that host; a join by ordinal (a Kubernetes pod's) is answered with the host id it stands for
 * (the deployment's hosts in order). `waitAll` fails after a timeout with the hosts still missing.
 */
export class HostRoster {
  private readonly unsubscribe: () => void;

  constructor(
    private readonly bus: NatsBus,
    private readonly deployment: string,
    private readonly hosts: readonly NatsHost[],
  ) {
    const byId = new Map(hosts.map((h) => [h.hostId, h]));
    this.unsubscribe = bus.subscribe(joinSubject(deployment), (data) => {
      let m: JoinMessage | undefined;
      try {
        m = new ControlReassembler().push(data) as JoinMessage | undefined;
      } catch {
        return; // a malformed announcement: not one of ours
      }
      if (m === undefined) return;
      if ('ordinal' in m) {
        const h = hosts[m.ordinal];
        if (h !== undefined)
          bus.publish(ordinalSubject(deployment, m.ordinal), encodeControl({ hostId: h.hostId }, 0, bus.maxPayload)[0]);
        return;
      }
      byId.get(m.hostId)?.markJoined();
    });
  }

  /** Resolves when every host has joined; after `timeoutMs`, rejects with RACKEMU_ERR_HOSTS_MISSING naming the rest. */
  async waitAll(timeoutMs: number): Promise<void> {
    const joined = new Set<string>();
    const all = Promise.all(this.hosts.map((h) => h.joined.then(() => joined.add(h.hostId))));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const missing = this.hosts.map((h) => h.hostId).filter((id) => !joined.has(id));
        const shown =
          missing.length > 12
            ? `${missing.slice(0, 12).join(', ')} and ${missing.length - 12} more`
            : missing.join(', ');
        reject(
          new RunError(
            'RACKEMU_ERR_HOSTS_MISSING',
            `${missing.length} of ${this.hosts.length} host agent(s) did not join deployment ${this.deployment} within ${Math.round(timeoutMs / 1000)} s: ${shown} (start them with rackemu host --deployment ${this.deployment})`,
            { details: { missing, deployment: this.deployment } },
          ),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([all, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.unsubscribe();
  }
}
