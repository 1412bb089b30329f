import {
  hostCpuCostsOf,
  pcieLoadFinishSeconds,
  pcieLoadSeconds,
  pcieShareOf,
  type HostCpuCosts,
  type PcieShare,
} from '../topology/host.js';
import type { Topology } from '../topology/types.js';

export {
  hostCpuCostsOf,
  pcieShareOf,
  readbackSeconds,
  stageSeconds,
  type HostCpuCosts,
  type PcieShare,
} from '../topology/host.js';

/**
 * One host agent's CPUs as virtual-time resources. Pure: no I/O, no wall clock; times are virtual
 * seconds (the emulated hardware's clock), chosen by the caller.
 *
 * Each CPU is an interval calendar of the work placed on it. `charge` puts a piece of work on the
 * CPU that can start it first (at or after the time asked; it may fill an idle gap left between
 * earlier pieces), so work charged out of order still lands where a real scheduler would have run it.
 * Busy seconds are kept per CPU and per kind of work, for metrics and utilisation.
 *
 * A long run places many pieces: `retire(t)` forgets the calendar before `t` (the busy totals
 * stay), after which work may no longer start before `t`.
 */

export type HostWorkKind = 'load' | 'stage' | 'readback' | 'tokenise' | 'detokenise' | 'health_poll';

export const HOST_WORK_KINDS: readonly HostWorkKind[] = [
  'load',
  'stage',
  'readback',
  'tokenise',
  'detokenise',
  'health_poll',
];

/** Where and when one charged piece of work ran. */
export interface Placement {
  readonly cpu: number;
  readonly start: number;
  readonly finish: number;
}

/** Gaps narrower than this (float rounding of sums of virtual seconds) join their neighbours. */
const EPS = 1e-12;

/** One CPU's busy intervals, sorted, disjoint and coalesced. */
class Calendar {
  private starts: number[] = [];
  private ends: number[] = [];

  get size(): number {
    return this.starts.length;
  }

  /** First index whose interval ends after t. */
  private firstEndingAfter(t: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid] > t) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Earliest start >= at of an idle window of `duration`. */
  earliestFit(at: number, duration: number): number {
    let t = at;
    for (let i = this.firstEndingAfter(at); i < this.starts.length; i++) {
      if (this.starts[i] >= t + duration - EPS) return t;
      t = Math.max(t, this.ends[i]);
    }
    return t;
  }

  insert(start: number, end: number): void {
    // intervals that end where this one starts, or overlap or touch it, join it
    const i = this.firstEndingAfter(start - EPS);
    let s = start;
    let e = end;
    let n = 0;
    while (i + n < this.starts.length && this.starts[i + n] <= e + EPS) {
      s = Math.min(s, this.starts[i + n]);
      e = Math.max(e, this.ends[i + n]);
      n++;
    }
    this.starts.splice(i, n, s);
    this.ends.splice(i, n, e);
  }

  /** Drops intervals that end at or before t. */
  retire(t: number): void {
    const k = this.firstEndingAfter(t);
    this.starts.splice(0, k);
    this.ends.splice(0, k);
  }
}

export class HostCpus {
  private readonly calendars: Calendar[];
  private readonly busyPerCpu: number[];
  private readonly busyPerKind = new Map<HostWorkKind, number>(HOST_WORK_KINDS.map((k) => [k, 0]));
  private horizon = -Infinity;

  /**
   * @param cpuCount CPUs of the host (the topology's `cpus_per_node`).
   * @param pcie its chips' PCIe links, for load times (`pcieShareOf(topology)`).
   * @param costs CPU seconds per unit of work (`hostCpuCostsOf(topology)`), for callers that size work from it.
   */
  constructor(
    readonly cpuCount: number,
    readonly pcie: PcieShare,
    readonly costs?: HostCpuCosts,
  ) {
    if (!Number.isInteger(cpuCount) || cpuCount < 1) throw new RangeError(`cpuCount must be an integer >= 1`);
    this.calendars = Array.from({ length: cpuCount }, () => new Calendar());
    this.busyPerCpu = new Array<number>(cpuCount).fill(0);
  }

  /** The CPUs of one node server of the topology, with its PCIe links and per-operation costs. */
  static forTopology(t: Topology): HostCpus {
    return new HostCpus(t.cpus_per_node, pcieShareOf(t), hostCpuCostsOf(t));
  }

  /**
   * Runs `durationSeconds` of `kind` work, ready at `virtualStartSeconds`, on the CPU that can start
   * it first (the lowest-numbered on a tie); returns the virtual time it finishes.
   */
  charge(kind: HostWorkKind, virtualStartSeconds: number, durationSeconds: number): number {
    return this.place(kind, virtualStartSeconds, durationSeconds).finish;
  }

  /** As `charge`, also saying which CPU ran the work and when it started. */
  place(kind: HostWorkKind, virtualStartSeconds: number, durationSeconds: number): Placement {
    if (!Number.isFinite(virtualStartSeconds)) throw new RangeError(`start must be finite`);
    if (!(durationSeconds >= 0) || !Number.isFinite(durationSeconds)) {
      throw new RangeError(`duration must be finite and >= 0, got ${durationSeconds}`);
    }
    if (virtualStartSeconds < this.horizon) {
      throw new RangeError(`start ${virtualStartSeconds} s is before the retired horizon ${this.horizon} s`);
    }
    if (durationSeconds === 0) return { cpu: 0, start: virtualStartSeconds, finish: virtualStartSeconds };
    let cpu = 0;
    let start = Infinity;
    for (let c = 0; c < this.cpuCount; c++) {
      const s = this.calendars[c].earliestFit(virtualStartSeconds, durationSeconds);
      if (s < start) {
        start = s;
        cpu = c;
      }
    }
    const finish = start + durationSeconds;
    this.calendars[cpu].insert(start, finish);
    this.busyPerCpu[cpu] += durationSeconds;
    this.busyPerKind.set(kind, this.busyPerKind.get(kind)! + durationSeconds);
    return { cpu, start, finish };
  }

  /** Busy virtual seconds of each CPU since construction. */
  busySecondsPerCpu(): number[] {
    return [...this.busyPerCpu];
  }

  /** Busy virtual seconds of each kind of work, over all CPUs. */
  busySecondsPerKind(): Record<HostWorkKind, number> {
    return Object.fromEntries(this.busyPerKind) as Record<HostWorkKind, number>;
  }

  /** Busy virtual seconds over all CPUs. */
  busySeconds(): number {
    return this.busyPerCpu.reduce((a, b) => a + b, 0);
  }

  /** Busy fraction of the host's CPUs over `elapsedSeconds` of virtual time (all work charged so far). */
  utilisation(elapsedSeconds: number): number {
    return elapsedSeconds > 0 ? this.busySeconds() / (this.cpuCount * elapsedSeconds) : 0;
  }

  /** Forgets the calendars before `virtualSeconds`; work may no longer start earlier. Busy totals stay. */
  retire(virtualSeconds: number): void {
    this.horizon = Math.max(this.horizon, virtualSeconds);
    for (const c of this.calendars) c.retire(virtualSeconds);
  }

  /** Busy intervals each CPU's calendar holds (to check that `retire` keeps memory bounded). */
  calendarSizes(): number[] {
    return this.calendars.map((c) => c.size);
  }

  /**
   * Seconds to load `bytesPerChip[i]` bytes (program + weights) into each chip of the node over PCIe,
   * all chips at once, sharing the host's lanes as the topology says (pcieLoadFinishSeconds).
   */
  loadTimeSeconds(bytesPerChip: readonly number[], pcie: PcieShare = this.pcie): number {
    return pcieLoadSeconds(bytesPerChip, pcie);
  }

  /** When each chip's load finishes, seconds after the load starts (for start-up progress). */
  loadFinishSeconds(bytesPerChip: readonly number[], pcie: PcieShare = this.pcie): number[] {
    return pcieLoadFinishSeconds(bytesPerChip, pcie);
  }

  /**
   * Seconds to reload only `chips` (indices into `bytesPerChip`, the node's chips) from host RAM, as
   * fault recovery does for the chips a re-plan changed; the others keep their contents and leave
   * the shared lanes to the reloading ones.
   */
  reloadTimeSeconds(bytesPerChip: readonly number[], chips: readonly number[], pcie: PcieShare = this.pcie): number {
    const only = new Set(chips);
    for (const c of only) {
      if (!Number.isInteger(c) || c < 0 || c >= bytesPerChip.length) throw new RangeError(`no chip ${c} in this node`);
    }
    return pcieLoadSeconds(
      bytesPerChip.map((b, i) => (only.has(i) ? b : 0)),
      pcie,
    );
  }
}
