import type { Topology } from './types.js';

/**
 * The host side of a node, read from the topology's `host` keys: what one host agent's CPUs spend on
 * each kind of work, and how long its chips take to load over PCIe. Pure arithmetic, shared by the
 * compiler's control-plane report and the host agents' virtual-time CPUs (control/host-cpu.ts).
 */

/** PCIe between one node's chips and its host: each chip's own link, and what all of them share. */
export interface PcieShare {
  /** One chip's own link, bytes per second. */
  readonly perChipBytesPerS: number;
  /** The host-side bandwidth the node's chips share (root ports or switch uplinks), bytes per second. */
  readonly sharedBytesPerS: number;
}

export function pcieShareOf(t: Topology): PcieShare {
  return { perChipBytesPerS: t.host.pcie_gbps * 1e9, sharedBytesPerS: t.host.pcie_root_gbps * 1e9 };
}

/**
 * When each chip's load finishes, seconds after all start together: a fluid model of the PCIe
 * links in which the chips still loading split the shared bandwidth evenly, each capped at its own
 * link (max-min fair sharing, as DMA engines behind one root complex or switch roughly behave).
 * Entries of 0 bytes (chips that load nothing, as in a reload of some chips) finish at 0.
 */
export function pcieLoadFinishSeconds(bytesPerChip: readonly number[], pcie: PcieShare): number[] {
  for (const b of bytesPerChip) {
    if (!(b >= 0) || !Number.isFinite(b)) throw new RangeError(`bytes per chip must be finite and >= 0, got ${b}`);
  }
  const finish = bytesPerChip.map(() => 0);
  const order = bytesPerChip
    .map((b, i) => ({ b, i }))
    .filter((x) => x.b > 0)
    .sort((x, y) => x.b - y.b || x.i - y.i);
  // Every chip still loading gets the same rate, so all of them have moved the same bytes so far:
  // chips finish in order of size, and the rate rises as each one leaves.
  let t = 0;
  let sent = 0;
  let active = order.length;
  for (const { b, i } of order) {
    const rate = Math.min(pcie.perChipBytesPerS, pcie.sharedBytesPerS / active);
    t += (b - sent) / rate;
    sent = b;
    finish[i] = t;
    active--;
  }
  return finish;
}

/** Seconds until the last of the chips has loaded (see pcieLoadFinishSeconds); 0 for nothing to load. */
export function pcieLoadSeconds(bytesPerChip: readonly number[], pcie: PcieShare): number {
  return Math.max(0, ...pcieLoadFinishSeconds(bytesPerChip, pcie));
}

/** The topology's `host.cpu_us` in seconds of one CPU, with the health-poll interval. */
export interface HostCpuCosts {
  readonly stagePerStepS: number;
  readonly stagePerRowS: number;
  readonly readbackPerStepS: number;
  readonly readbackPerRowS: number;
  readonly tokenisePerTokenS: number;
  readonly detokenisePerTokenS: number;
  readonly healthPollPerChipS: number;
  readonly healthPollIntervalS: number;
}

export function hostCpuCostsOf(t: Topology): HostCpuCosts {
  const us = t.host.cpu_us;
  return {
    stagePerStepS: us.stage_per_step * 1e-6,
    stagePerRowS: us.stage_per_row * 1e-6,
    readbackPerStepS: us.readback_per_step * 1e-6,
    readbackPerRowS: us.readback_per_row * 1e-6,
    tokenisePerTokenS: us.tokenise_per_token * 1e-6,
    detokenisePerTokenS: us.detokenise_per_token * 1e-6,
    healthPollPerChipS: us.health_poll_per_chip * 1e-6,
    healthPollIntervalS: t.host.health_poll_interval_s,
  };
}

/** CPU seconds to stage one step's input ids (`rows` of them) into the chip that holds them. */
export function stageSeconds(c: HostCpuCosts, rows: number): number {
  return c.stagePerStepS + c.stagePerRowS * rows;
}

/** CPU seconds to read one step's sampled ids (`rows` of them) back from the sampler chip. */
export function readbackSeconds(c: HostCpuCosts, rows: number): number {
  return c.readbackPerStepS + c.readbackPerRowS * rows;
}
