import type { Plan, Transfer } from '../compiler/plan.js';
import type { ChipFault, FrameFault } from '../runtime/index.js';
import type { Fabric } from '../topology/fabric.js';
import { linkIds, type Target } from './targets.js';
import { FAULT_DEFAULTS as D, type FaultSpec } from './types.js';

/** Last step of a fault that lasts until its part is retired. */
export const FOREVER = Number.MAX_SAFE_INTEGER;

/** What a fault does to the chips from step `step` on, in the Plan now running. */
export interface Armed {
  readonly frameFaults: FrameFault[];
  readonly chipFaults: ChipFault[];
}

/** The (src, dst, tensor) frames whose route crosses the physical link between `chips`, over both step kinds. */
export function framesOnLink(plan: Plan, fabric: Fabric, chips: readonly [number, number]): Transfer[] {
  const ids = new Set(linkIds(fabric, chips[0], chips[1]));
  return [plan.steps.prefill, plan.steps.decode].flatMap((s) =>
    s.transfers.filter((t) => t.links.some((l) => ids.has(l))),
  );
}

export function arm(spec: FaultSpec, target: Target, step: number, plan: Plan, fabric: Fabric): Armed {
  const frameFaults: FrameFault[] = [];
  const chipFaults: ChipFault[] = [];
  const id = (chip: number) => fabric.chipId(chip);
  const pairs = (): { src: string; dst: string }[] => {
    if (target.kind !== 'link') return [];
    const seen = new Map<string, { src: string; dst: string }>();
    for (const t of framesOnLink(plan, fabric, target.chips))
      seen.set(`${t.src}>${t.dst}`, { src: id(t.src), dst: id(t.dst) });
    return [...seen.values()];
  };
  switch (spec.kind) {
    case 'chip-crash':
    case 'chip-hang':
      if (target.kind === 'chip')
        chipFaults.push({ kind: spec.kind === 'chip-crash' ? 'crash' : 'hang', chip: target.id, step });
      break;
    case 'clock-skew':
      if (target.kind === 'chip')
        chipFaults.push({ kind: 'skew', chip: target.id, step, ticks: spec.ticks ?? D['clock-skew'].ticks });
      break;
    case 'sram-bitflip':
      if (target.kind === 'chip') {
        chipFaults.push({
          kind: 'bitflip',
          chip: target.id,
          step,
          tensor: spec.tensor,
          bits: spec.bits ?? D['sram-bitflip'].bits,
          ecc: spec.ecc ?? D['sram-bitflip'].ecc,
          seed: spec.seed ?? D['sram-bitflip'].seed,
        });
      }
      break;
    case 'link-down':
      for (const p of pairs()) frameFaults.push({ kind: 'drop', ...p, step, lastStep: FOREVER });
      break;
    case 'link-degraded':
      for (const p of pairs()) {
        // a lost frame first (drop), else a slow one (delay): the first matching fault applies
        frameFaults.push({ kind: 'drop', ...p, step, lastStep: FOREVER, rate: spec.loss ?? D['link-degraded'].loss });
        frameFaults.push({
          kind: 'delay',
          ...p,
          step,
          lastStep: FOREVER,
          ticks: spec.ticks ?? D['link-degraded'].ticks,
        });
      }
      break;
    case 'frame-delay':
      for (const p of pairs())
        frameFaults.push({ kind: 'delay', ...p, step, ticks: spec.ticks ?? D['frame-delay'].ticks });
      break;
    case 'frame-corrupt': {
      const count = spec.count ?? D['frame-corrupt'].count;
      const lastStep = step + count - 1;
      if (target.kind === 'link') for (const p of pairs()) frameFaults.push({ kind: 'corrupt', ...p, step, lastStep });
      else if (target.kind === 'chip') frameFaults.push({ kind: 'corrupt', src: target.id, step, lastStep });
      break;
    }
    case 'host-crash':
    case 'nats-server-kill':
      // outside the chips: the campaign acts when the window starts
      break;
  }
  return { frameFaults, chipFaults };
}
