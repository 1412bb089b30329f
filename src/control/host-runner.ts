import { openNatsBus, type NatsAuth, type NatsBus } from '../transport/index.js';
import { RunError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { ControlReassembler, encodeControl, joinSubject, ordinalSubject, type JoinMessage } from './control-channel.js';
import { HostControl } from './host-control.js';
import { HostService } from './host-service.js';

export interface HostRunOptions {
  readonly servers: string | readonly string[];
  readonly auth?: NatsAuth;
  readonly deployment: string;
  /** Which node server this agent is: its host id, or its ordinal among the deployment's hosts. */
  readonly host: { readonly hostId: string } | { readonly ordinal: number };
  /** Give up when no coordinator takes this host within this many ms (default: wait for ever). */
  readonly joinTimeoutMs?: number;
  /** Serve the host's own GET /metrics at this address and port (a fixed one, for a scrape config). */
  readonly metrics?: { readonly host: string; readonly port: number };
}

/** How often a host agent announces itself until loaded, and beats while it serves. */
const BEAT_MS = 1000;

/** A coordinator that has sent nothing (it beats every second) for this long is gone. */
const COORDINATOR_SILENCE_MS = 15_000;

/**
 * Runs one host agent over NATS until its coordinator stops it: announces itself on the deployment's
 * join subject, takes the control messages of its host subject (HostService), and beats on its
 * coordinator subject so that a coordinator sees a host that stopped answering. Used by `rackemu host`
 * (a host agent on any machine) and by the coordinator's own children (--isolation process).
 */
export async function runHostAgent(o: HostRunOptions): Promise<void> {
  const bus = await openNatsBus({ servers: o.servers, auth: o.auth, name: `rackemu host ${JSON.stringify(o.host)}` });
  try {
    const hostId = 'hostId' in o.host ? o.host.hostId : await resolveOrdinal(bus, o.deployment, o.host.ordinal, o);
    const log = logger().child({ host: hostId, deployment: o.deployment });
    const control = new HostControl(
      bus,
      o.deployment,
      hostId,
      log,
      BEAT_MS,
      (send) => new HostService(send, o.servers, o.metrics),
    );
    await bus.flush();
    log.info({}, 'host agent joining');
    const join: JoinMessage = { hostId };
    const started = Date.now();
    const beat = setInterval(() => {
      if (!control.contacted) {
        bus.publish(joinSubject(o.deployment), encodeControl(join, 0, bus.maxPayload)[0]);
        if (o.joinTimeoutMs !== undefined && Date.now() - started > o.joinTimeoutMs) {
          clearInterval(beat);
          void bus.close();
        }
      } else {
        control.beat();
        // a coordinator that died without stopping its hosts: leave, so a supervisor restarts this agent to rejoin
        if (control.silence.check() > COORDINATOR_SILENCE_MS) {
          control.leave(
            new RunError(
              'RACKEMU_ERR_HOSTS_MISSING',
              `the coordinator of deployment ${o.deployment} fell silent: nothing heard for ${Math.round(COORDINATOR_SILENCE_MS / 1000)} s`,
            ),
          );
        }
      }
    }, BEAT_MS);
    bus.publish(joinSubject(o.deployment), encodeControl(join, 0, bus.maxPayload)[0]);
    try {
      await control.stopped;
    } finally {
      clearInterval(beat);
      await control.service.shutdown();
    }
    await bus.flush();
    log.info({}, 'host agent stopped');
  } finally {
    await bus.close();
  }
}

/** With --ordinal: asks the coordinator which host id the ordinal stands for (the pod ordinal on Kubernetes). */
async function resolveOrdinal(bus: NatsBus, deployment: string, ordinal: number, o: HostRunOptions): Promise<string> {
  const reply = ordinalSubject(deployment, ordinal);
  const reassembler = new ControlReassembler();
  return new Promise<string>((resolve, reject) => {
    const started = Date.now();
    const ask = () => {
      if (o.joinTimeoutMs !== undefined && Date.now() - started > o.joinTimeoutMs) {
        clearInterval(timer);
        reject(
          new RunError(
            'RACKEMU_ERR_HOSTS_MISSING',
            `no coordinator of deployment ${deployment} answered ordinal ${ordinal}`,
          ),
        );
        return;
      }
      bus.publish(joinSubject(deployment), encodeControl({ ordinal } satisfies JoinMessage, 0, bus.maxPayload)[0]);
    };
    const timer = setInterval(ask, BEAT_MS);
    bus.subscribe(reply, (data) => {
      const m = reassembler.push(data) as { hostId: string } | undefined;
      if (m === undefined) return;
      clearInterval(timer);
      resolve(m.hostId);
    });
    void bus.flush().then(ask);
  });
}
