import type { Fabric } from '../topology/fabric.js';
import { loadSeconds, programBytes } from './control-plane.js';
import type { ChipPlacement, Plan, Program } from './plan.js';

/**
 * What a re-plan costs at run time: the chips whose contents change are reloaded from host RAM over
 * PCIe (the hosts keep every chip's weights and programs; see control-plane.ts). Chips whose weights
 * are unchanged keep them and take only their new program.
 */

export interface ChipReload {
  readonly chip: number;
  /** weightBytes + programBytes. */
  readonly bytes: number;
  /** The chip's whole new weight share if any weight slice changed, else 0. */
  readonly weightBytes: number;
  /** Program estimate, 32 bytes per instruction (PROGRAM_BYTES_PER_INSTRUCTION, control-plane.ts). */
  readonly programBytes: number;
}

export interface Reload {
  /** By chip index; chips that keep both weights and program are not listed. */
  readonly chips: readonly ChipReload[];
  readonly bytes: number;
  /** Virtual seconds: hosts load in parallel, so the slowest host's PCIe time. */
  readonly seconds: number;
}

function sameWeights(a: ChipPlacement, b: ChipPlacement): boolean {
  return (
    a.memory.weightBytes === b.memory.weightBytes &&
    a.holds.length === b.holds.length &&
    a.holds.every((h, i) => h === b.holds[i])
  );
}

/** Programs are plain data built in a fixed key order, so equal JSON means equal instructions. */
function sameProgram(a: Program | undefined, b: Program): boolean {
  return a !== undefined && JSON.stringify([a.prefill, a.decode]) === JSON.stringify([b.prefill, b.decode]);
}

/** Chips of `next` (on its fabric) whose weights or program differ from `previous`, and the time to load them. */
export function reloadOf(previous: Plan, next: Plan, fabric: Fabric): Reload {
  const chips: ChipReload[] = [];
  const perChip = new Array<number>(fabric.chipCount).fill(0);
  for (const p of next.placement) {
    const prog = next.programs.get(p.chip);
    const weightBytes =
      p.memory.weightBytes > 0 && !sameWeights(previous.placement[p.chip], p) ? p.memory.weightBytes : 0;
    const changed = weightBytes > 0 || (prog !== undefined && !sameProgram(previous.programs.get(p.chip), prog));
    if (!changed) continue;
    const progBytes = prog ? programBytes(prog) : 0;
    chips.push({ chip: p.chip, bytes: weightBytes + progBytes, weightBytes, programBytes: progBytes });
    perChip[p.chip] = weightBytes + progBytes;
  }
  return { chips, bytes: chips.reduce((a, c) => a + c.bytes, 0), seconds: loadSeconds(perChip, fabric) };
}
