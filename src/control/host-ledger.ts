import { loadBytesPerChip } from '../compiler/control-plane.js';
import type { Plan } from '../compiler/plan.js';
import type { Fabric } from '../topology/fabric.js';
import { readbackSeconds, stageSeconds } from '../topology/host.js';
import { HostCpus } from './host-cpu.js';

/** Busy virtual seconds of one CPU of one host agent. */
export interface HostCpuBusy {
  readonly hostId: string;
  readonly cpu: number;
  readonly busySeconds: number;
}

/**
 * The serving control plane's work on the host CPUs, in virtual time (HostCpus per host agent):
 * staging each step's input ids and reading back its sampled ids on the sampler chip's host,
 * tokenising prompts and detokenising outputs on the hosts in turn (requests are dealt round-robin),
 * and health polls of every host's chips at the topology's interval. Costs come from the topology
 * (`host.cpu_us`; docs/compiler.md, "Control plane").
 */
export class HostLedger {
  private readonly cpus = new Map<string, HostCpus>();
  private readonly chipsPerHost = new Map<string, number>();
  private readonly samplerHost: string;
  /** Per host: the program and weight bytes its chips load at start-up, and the virtual seconds that takes. */
  readonly loads: readonly { readonly hostId: string; readonly bytes: number; readonly seconds: number }[];
  private nextHost = 0;
  private polledUntil = 0;

  constructor(plan: Plan, fabric: Fabric, hostIds: readonly string[]) {
    for (const h of hostIds) {
      this.cpus.set(h, HostCpus.forTopology(plan.topology));
      this.chipsPerHost.set(h, fabric.chipsPerNode);
    }
    this.samplerHost = fabric.hostId(plan.layout.sampler);
    const perChip = loadBytesPerChip(plan, fabric);
    this.loads = hostIds.map((hostId) => {
      const chips = perChip.filter((_, c) => fabric.hostId(c) === hostId);
      return {
        hostId,
        bytes: chips.reduce((a, b) => a + b, 0),
        seconds: this.cpus.get(hostId)!.loadTimeSeconds(chips),
      };
    });
  }

  /** A step starting at `startSeconds` (virtual) with `rows` rows: its ids staged, its samples read back. */
  step(startSeconds: number, rows: number): void {
    const host = this.cpus.get(this.samplerHost);
    if (host === undefined) return;
    const staged = host.charge('stage', startSeconds, stageSeconds(host.costs!, rows));
    host.charge('readback', staged, readbackSeconds(host.costs!, rows));
  }

  /** A request's prompt tokenised at arrival and its output detokenised at the end, on the next host in turn. */
  request(promptTokens: number, arrivalSeconds: number, outputTokens: number, endSeconds: number): void {
    const ids = [...this.cpus.keys()];
    if (ids.length === 0) return;
    const host = this.cpus.get(ids[this.nextHost++ % ids.length])!;
    host.charge('tokenise', arrivalSeconds, promptTokens * host.costs!.tokenisePerTokenS);
    host.charge('detokenise', endSeconds, outputTokens * host.costs!.detokenisePerTokenS);
  }

  /** Health polls of every host's chips up to `untilSeconds` of virtual time. */
  pollUntil(untilSeconds: number): void {
    for (const [hostId, host] of this.cpus) {
      const every = host.costs!.healthPollIntervalS;
      const cost = host.costs!.healthPollPerChipS * this.chipsPerHost.get(hostId)!;
      for (let t = this.polledUntil; t < untilSeconds; t += every) host.charge('health_poll', t, cost);
    }
    const every = [...this.cpus.values()][0]?.costs!.healthPollIntervalS ?? 1;
    this.polledUntil = Math.max(this.polledUntil, Math.ceil(untilSeconds / every) * every);
  }

  /** Forget calendars before `virtualSeconds` (nothing is charged earlier from then on): bounded memory. */
  retire(virtualSeconds: number): void {
    for (const host of this.cpus.values()) host.retire(virtualSeconds);
  }

  busy(): HostCpuBusy[] {
    const out: HostCpuBusy[] = [];
    for (const [hostId, host] of this.cpus)
      host.busySecondsPerCpu().forEach((busySeconds, cpu) => out.push({ hostId, cpu, busySeconds }));
    return out;
  }
}
