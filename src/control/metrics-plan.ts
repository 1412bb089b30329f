import type { Plan, Step, StepKind } from '../compiler/plan.js';
import type { Fabric, LinkKind } from '../topology/fabric.js';

/**
 * What the metrics know about chips and links, and how to derive it from a Plan. Pure functions:
 * the engine calls them once per Plan (at start-up and after a re-plan), never per step.
 */

export type ChipState = 'up' | 'idle' | 'spare' | 'failed';
export const CHIP_STATES: readonly ChipState[] = ['up', 'idle', 'spare', 'failed'];

export interface ChipStatus {
  /** `r<rack>.n<node>.c<chip>` */
  readonly chipId: string;
  /** `r<rack>.n<node>`: the host agent that owns the chip. */
  readonly hostId: string;
  readonly state: ChipState;
  readonly sramUsedBytes: number;
  readonly sramCapacityBytes: number;
}

/** Traffic out of one chip over its links of one kind (a delta: bytes and busy time since the last sample). */
export interface LinkTrafficSample {
  readonly chipId: string;
  readonly kind: LinkKind;
  /** Bytes the chip's outbound links of this kind carried (frames it forwards included). */
  readonly bytes: number;
  /** Virtual seconds those links were busy, summed over the links. */
  readonly busyVirtualSeconds: number;
}

/** The traffic one step of each kind puts on the links, per chip, and how many links each rack has. */
export interface LinkTrafficModel {
  readonly perStep: Readonly<Record<StepKind, readonly LinkTrafficSample[]>>;
  /** Directed links whose sending chip is in the rack, by kind (switch ports count once per chip and direction). */
  readonly links: readonly { readonly rack: string; readonly kind: LinkKind; readonly count: number }[];
}

/** The `rack`, `node` and `chip` label values of an entity: each is the entity's own id (`r2`, `r2.n4`, `r2.n4.c7`). */
export interface EntityLabels {
  readonly rack: string;
  readonly node: string;
}

const HOST_ID = /^(r\d+)\.n\d+/;

/** Labels of a host id or chip id; ids that are not `r<rack>.n<node>...` keep the whole id as node and rack. */
export function entityLabels(id: string): EntityLabels {
  const m = HOST_ID.exec(id);
  if (!m) return { rack: id, node: id };
  return { rack: m[1], node: m[0] };
}

/**
 * Every chip of the fabric with its state and memory as the Plan places it: spares are `spare`, chips
 * without work `idle`, the rest `up`; ids in `failed` are `failed`. Used bytes are weights, KV cache and
 * the larger of the prefill and decode activation peaks; capacity is the chip's memory (SRAM on an LPU).
 */
export function chipsOfPlan(plan: Plan, fabric: Fabric, failed: Iterable<string> = []): ChipStatus[] {
  const down = new Set(failed);
  const out: ChipStatus[] = [];
  for (const p of plan.placement) {
    const chipId = fabric.chipId(p.chip);
    const m = p.memory;
    const used = m.weightBytes + m.kvBytes + Math.max(m.peakActivationBytes.prefill, m.peakActivationBytes.decode);
    let state: ChipState = p.role === 'spare' ? 'spare' : p.role === 'idle' ? 'idle' : 'up';
    if (down.has(chipId)) state = 'failed';
    out.push({
      chipId,
      hostId: fabric.hostId(p.chip),
      state,
      sramUsedBytes: used,
      sramCapacityBytes: plan.capacityBytes,
    });
  }
  return out;
}

function stepTraffic(fabric: Fabric, step: Step, secondsPerTick: number): LinkTrafficSample[] {
  const acc = new Map<string, { chip: number; kind: LinkKind; bytes: number; busy: number }>();
  for (const tr of step.transfers) {
    for (const id of tr.links) {
      const link = fabric.links[id];
      const key = `${link.from}:${link.kind}`;
      let a = acc.get(key);
      if (!a) acc.set(key, (a = { chip: link.from, kind: link.kind, bytes: 0, busy: 0 }));
      // A switch's down port carries the receiver's inbound traffic: its time is busy, its bytes are not outbound.
      if (!link.name.endsWith(':down')) a.bytes += tr.bytes;
      a.busy += tr.busyTicks * secondsPerTick;
    }
  }
  return [...acc.values()]
    .sort((x, y) => x.chip - y.chip || x.kind.localeCompare(y.kind))
    .map((a) => ({ chipId: fabric.chipId(a.chip), kind: a.kind, bytes: a.bytes, busyVirtualSeconds: a.busy }));
}

/** The link traffic of one prefill step and one decode step of the Plan, per chip and link kind. */
export function linkTrafficOfPlan(plan: Plan, fabric: Fabric): LinkTrafficModel {
  const secondsPerTick = 1 / (plan.topology.chip.clock_mhz * 1e6);
  const counts = new Map<string, { rack: string; kind: LinkKind; count: number }>();
  for (const link of fabric.links) {
    const rack = `r${fabric.rackOf(link.from)}`;
    const key = `${rack}:${link.kind}`;
    const c = counts.get(key) ?? { rack, kind: link.kind, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  return {
    perStep: {
      prefill: stepTraffic(fabric, plan.steps.prefill, secondsPerTick),
      decode: stepTraffic(fabric, plan.steps.decode, secondsPerTick),
    },
    links: [...counts.values()],
  };
}
