import { loadModel } from '../model/load.js';
import { toWireError } from '../runtime/index.js';
import { childLogger } from '../util/log.js';
import { HostAgent } from './host-agent.js';
import { HostMetrics, listenMetrics } from './host-metrics.js';
import { weightsFor, type CoordinatorToHost, type HostToCoordinator } from './host.js';

/** A request to a host agent (every coordinator message but its heartbeat). */
export type Request = Exclude<CoordinatorToHost, { type: 'heartbeat' }>;
/** A reply to a request. */
export type Reply = Extract<HostToCoordinator, { type: 'loaded' | 'ran' | 'logits' | 'stopped' | 'error' }>;

/**
 * A host agent's side of the control protocol, whatever carries it (host-runner.ts: NATS): it loads
 * its chips' Programs and the weight slices it reads itself from the model source, runs windows, reads
 * back logits and stops. When the coordinator asks (serve), it also serves its own GET /metrics
 * (host-metrics.ts) and says where in its `loaded` reply.
 */
export class HostService {
  private agent: HostAgent | null = null;
  private metrics: HostMetrics | null = null;

  constructor(
    private readonly send: (m: HostToCoordinator) => void,
    /** The host's own view of the chips' NATS servers (a host on another machine reaches them by its own URL). */
    private readonly natsServers?: string | readonly string[],
    /** Serve GET /metrics here whatever the coordinator asks (`rackemu host --metrics-host/--metrics-port`). */
    private readonly metricsAt?: { readonly host: string; readonly port: number },
  ) {}

  /** Stops the chips (the coordinator went away without stopping them). */
  async shutdown(): Promise<void> {
    await this.agent?.stop();
    this.agent = null;
  }

  /**
   * Handles one request and resolves with its reply (failures as an `error` reply); streamed samples and
   * chip-ready notes go out through `send` meanwhile.
   */
  async handle(msg: Request): Promise<Reply> {
    try {
      switch (msg.type) {
        case 'load':
          return await this.load(msg);
        case 'run': {
          const outcomes = await this.agent!.run(msg.spec, (samples) => this.send({ type: 'samples', samples }));
          this.metrics?.runEnded(outcomes);
          return { type: 'ran', outcomes };
        }
        case 'readback':
          return { type: 'logits', logits: await this.agent!.readback(msg.chipIds) };
        case 'stop':
          await this.agent?.stop();
          return { type: 'stopped' };
      }
    } catch (e) {
      return { type: 'error', error: toWireError(e) };
    }
  }

  private async load(msg: Extract<CoordinatorToHost, { type: 'load' }>): Promise<Reply> {
    const log = childLogger({ host: msg.hostId });
    const chipIds = msg.chips.map((c) => c.init.chipId);
    const at = this.metricsAt ?? (msg.metrics === null ? null : { host: msg.metrics.host, port: 0 });
    const m = at === null ? null : new HostMetrics(msg.hostId, chipIds);
    this.metrics = m;
    const numeric = msg.chips.some((c) => c.init.fidelity === 'numeric');
    const { weights } = loadModel(msg.model.spec, { dtype: msg.model.dtype, withWeights: numeric });
    this.agent = new HostAgent(msg.hostId, {
      chipDown: (chip, why) => {
        m?.chipFailed(chip);
        log.warn({ chip, why }, 'chip down');
      },
    });
    // listen while the chips load
    const listening = m && at ? listenMetrics(m.registry, at.host, at.port) : null;
    listening?.catch(() => undefined); // reported below, after the load
    const servers = this.natsServers;
    await this.agent.load(
      msg.chips.map((c) => ({
        init: c.init,
        transport: servers !== undefined && c.transport.kind === 'nats' ? { ...c.transport, servers } : c.transport,
        weights: weightsFor(c.init, weights),
      })),
      (chipId) => {
        m?.chipUp(chipId);
        this.send({ type: 'chip-ready', chipId });
      },
    );
    const metricsUrl = listening === null ? null : (await listening).url;
    if (metricsUrl !== null) log.info({ url: metricsUrl, chips: chipIds.length }, 'host metrics listening');
    return { type: 'loaded', metricsUrl };
  }
}
