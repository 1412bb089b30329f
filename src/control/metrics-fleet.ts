import { Counter, Gauge, type Registry } from 'prom-client';
import type { StepKind } from '../compiler/plan.js';
import type { LinkKind } from '../topology/fabric.js';
import {
  CHIP_STATES,
  entityLabels,
  type ChipState,
  type ChipStatus,
  type LinkTrafficModel,
  type LinkTrafficSample,
} from './metrics-plan.js';

/** One host CPU's busy virtual seconds so far (the engine's HostLedger.busy() gives these). */
export interface HostCpuTotal {
  readonly hostId: string;
  readonly cpu: number;
  readonly busySeconds: number;
}

/** The increase from the last total to this one; a total below the last means a restart, and all of it is new. */
function delta(last: number, total: number): number {
  return total >= last ? total - last : total;
}

/**
 * The per-entity families of ServingMetrics: chips (memory, state), links (bytes per chip, busy time
 * per rack) and hosts (CPU busy time, loads). Labels are `rack`, `node`, `chip` (each the entity's own
 * id) plus bounded ones (`state`, `kind`, `cpu`); never two chips on one series.
 */
export class FleetMetrics {
  private readonly sramUsed: Gauge<'rack' | 'node' | 'chip'>;
  private readonly sramCapacity: Gauge<'rack' | 'node' | 'chip'>;
  private readonly chipState: Gauge<'rack' | 'node' | 'chip' | 'state'>;
  private readonly chipCount: Gauge<'state'>;
  private readonly linkBytes: Counter<'rack' | 'node' | 'chip' | 'kind'>;
  private readonly linkBusy: Counter<'rack' | 'kind'>;
  private readonly linkCount: Gauge<'rack' | 'kind'>;
  private readonly utilisation: Gauge<'rack' | 'kind'>;
  private readonly hostCpuBusy: Counter<'rack' | 'node' | 'cpu'>;
  private readonly agentCpu: Counter;
  private readonly hostLoadBytes: Counter<'rack' | 'node'>;
  private readonly hostLoadSeconds: Counter<'rack' | 'node'>;

  /** Per chip id: the labels of its series (to remove them when a chip leaves the snapshot) and its state. */
  private readonly chips = new Map<string, { rack: string; node: string; state: ChipState }>();
  /** Busy virtual seconds per `rack:kind`, for the utilisation gauge. */
  private readonly busy = new Map<string, number>();
  private readonly links = new Map<string, number>();
  private model: LinkTrafficModel | undefined;
  private readonly pendingSteps: Record<StepKind, number> = { prefill: 0, decode: 0 };
  private readonly hostCpuLast = new Map<string, number>();
  private agentCpuLast = 0;

  constructor(
    registry: Registry,
    /** Virtual seconds the deployment has spent in steps, the denominator of link utilisation. */
    private readonly stepSeconds: () => number,
  ) {
    const registers = [registry];
    const gauge = <T extends string>(name: string, help: string, labelNames: readonly T[], collect?: () => void) =>
      new Gauge<T>({ name, help, labelNames, registers, collect });
    const counter = <T extends string>(name: string, help: string, labelNames: readonly T[], collect?: () => void) =>
      new Counter<T>({ name, help, labelNames, registers, collect });
    const chip = ['rack', 'node', 'chip'] as const;
    const fold = () => this.fold();
    this.sramUsed = gauge(
      'rackemu_chip_sram_used_bytes',
      "Bytes of the chip's on-chip memory (SRAM; HBM on GPU topologies) that the Plan uses: weights, KV cache, peak activations.",
      chip,
    );
    this.sramCapacity = gauge('rackemu_chip_sram_capacity_bytes', "Bytes of the chip's on-chip memory.", chip);
    this.chipState = gauge(
      'rackemu_chip_state',
      'One series per chip, value 1, with the chip state (up, idle, spare, failed) as the state label.',
      [...chip, 'state'],
    );
    this.chipCount = gauge('rackemu_chips', 'Chips in each state (up, idle, spare, failed).', ['state']);
    for (const state of CHIP_STATES) this.chipCount.set({ state }, 0);
    this.linkBytes = counter(
      'rackemu_link_transmit_bytes_total',
      "Bytes carried by the chip's outbound links of this kind (local: inside the node; global: between nodes and racks), forwarded frames included.",
      [...chip, 'kind'],
      fold,
    );
    this.linkBusy = counter(
      'rackemu_link_busy_seconds_total',
      "Virtual seconds the rack's outbound links of this kind were busy, summed over the links.",
      ['rack', 'kind'],
      fold,
    );
    this.linkCount = gauge('rackemu_links', 'Directed links whose sending chip is in the rack, by kind.', [
      'rack',
      'kind',
    ]);
    this.utilisation = gauge(
      'rackemu_link_utilisation_ratio',
      "Mean busy fraction of the rack's links of this kind over the virtual time spent in steps since start (for a recent window use rate() of rackemu_link_busy_seconds_total).",
      ['rack', 'kind'],
      () => this.collectUtilisation(),
    );
    const host = ['rack', 'node', 'cpu'] as const;
    this.hostCpuBusy = counter(
      'rackemu_host_cpu_busy_seconds_total',
      "Virtual seconds the host's CPU was busy (program and weight loads, input staging, readback, tokenisation, health polls).",
      host,
    );
    this.agentCpu = counter(
      'rackemu_host_agent_cpu_seconds_total',
      "Real CPU seconds (user + system) of this process, which runs the host agents' work: the cost on this machine beside the virtual busy seconds.",
      [],
    );
    this.hostLoadBytes = counter(
      'rackemu_host_load_bytes_total',
      'Bytes of programs and weights the host loaded into its chips over PCIe (start-up and reloads).',
      ['rack', 'node'],
    );
    this.hostLoadSeconds = counter(
      'rackemu_host_load_seconds_total',
      "Virtual seconds the host's PCIe loads into its chips took.",
      ['rack', 'node'],
    );
  }

  setChips(chips: readonly ChipStatus[]): void {
    const seen = new Set<string>();
    const counts: Record<ChipState, number> = { up: 0, idle: 0, spare: 0, failed: 0 };
    for (const c of chips) {
      const { rack } = entityLabels(c.chipId);
      const node = c.hostId;
      const labels = { rack, node, chip: c.chipId };
      const prev = this.chips.get(c.chipId);
      if (prev && prev.state !== c.state) this.chipState.remove({ ...labels, state: prev.state });
      this.chipState.set({ ...labels, state: c.state }, 1);
      this.sramUsed.set(labels, c.sramUsedBytes);
      this.sramCapacity.set(labels, c.sramCapacityBytes);
      this.chips.set(c.chipId, { rack, node, state: c.state });
      counts[c.state]++;
      seen.add(c.chipId);
    }
    for (const [chipId, prev] of this.chips) {
      if (seen.has(chipId)) continue;
      const labels = { rack: prev.rack, node: prev.node, chip: chipId };
      this.chipState.remove({ ...labels, state: prev.state });
      this.sramUsed.remove(labels);
      this.sramCapacity.remove(labels);
      this.chips.delete(chipId);
    }
    for (const state of CHIP_STATES) this.chipCount.set({ state }, counts[state]);
  }

  addLinkTraffic(samples: readonly LinkTrafficSample[], times = 1): void {
    if (times <= 0) return;
    for (const s of samples) {
      const { rack, node } = entityLabels(s.chipId);
      if (s.bytes > 0) this.linkBytes.inc({ rack, node, chip: s.chipId, kind: s.kind }, s.bytes * times);
      if (s.busyVirtualSeconds > 0) {
        const busy = s.busyVirtualSeconds * times;
        this.linkBusy.inc({ rack, kind: s.kind }, busy);
        const key = `${rack}:${s.kind}`;
        this.busy.set(key, (this.busy.get(key) ?? 0) + busy);
      }
    }
  }

  /** Counts the Plan's traffic with every step from now on; traffic of steps run under the previous model is kept. */
  setLinkModel(model: LinkTrafficModel): void {
    this.fold();
    this.model = model;
    this.linkCount.reset();
    this.links.clear();
    for (const l of model.links) {
      this.linkCount.set({ rack: l.rack, kind: l.kind }, l.count);
      this.links.set(`${l.rack}:${l.kind}`, l.count);
    }
  }

  /** A step ran: its traffic is added (lazily, at the next scrape) when a link model is set. */
  stepRan(kind: StepKind): void {
    if (this.model) this.pendingSteps[kind]++;
  }

  private fold(): void {
    if (!this.model) return;
    for (const kind of ['prefill', 'decode'] as const) {
      const n = this.pendingSteps[kind];
      if (n === 0) continue;
      this.pendingSteps[kind] = 0;
      this.addLinkTraffic(this.model.perStep[kind], n);
    }
  }

  private collectUtilisation(): void {
    this.fold();
    const seconds = this.stepSeconds();
    for (const [key, count] of this.links) {
      const [rack, kind] = key.split(':') as [string, LinkKind];
      const ratio = seconds > 0 && count > 0 ? (this.busy.get(key) ?? 0) / (count * seconds) : 0;
      this.utilisation.set({ rack, kind }, ratio);
    }
  }

  /** Cumulative busy virtual seconds of host CPUs, and this process's real CPU seconds. */
  hostCpu(busy: readonly HostCpuTotal[], realCpuSeconds: number): void {
    for (const b of busy) {
      const { rack, node } = entityLabels(b.hostId);
      const key = `${b.hostId}/${b.cpu}`;
      this.hostCpuBusy.inc({ rack, node, cpu: String(b.cpu) }, delta(this.hostCpuLast.get(key) ?? 0, b.busySeconds));
      this.hostCpuLast.set(key, b.busySeconds);
    }
    this.agentCpu.inc(delta(this.agentCpuLast, realCpuSeconds));
    this.agentCpuLast = realCpuSeconds;
  }

  addHostLoad(hostId: string, bytes: number, virtualSeconds: number): void {
    const labels = entityLabels(hostId);
    this.hostLoadBytes.inc(labels, bytes);
    this.hostLoadSeconds.inc(labels, virtualSeconds);
  }
}
