import { planSlots, type Plan, type Program, type Step, type StepKind } from '../compiler/plan.js';
import type { Fabric } from '../topology/fabric.js';
import type { ChipInit, TensorMeta, Fidelity } from '../runtime/index.js';

/**
 * What the control plane loads into each chip: its Program and only the metadata that Program needs.
 * The chips that get a worker are those of every node the plan occupies: chips with work, their idle
 * node-mates and the spare nodes of the racks involved (standing by for failover).
 */
export function deployedChips(plan: Plan, fabric: Fabric): number[] {
  const used = [...plan.programs.keys()];
  const nodes = new Set(used.map((c) => fabric.globalNodeOf(c)));
  const racks = new Set(used.map((c) => fabric.rackOf(c)));
  for (let c = 0; c < fabric.chipCount; c++)
    if (fabric.isSpare(c) && racks.has(fabric.rackOf(c))) nodes.add(fabric.globalNodeOf(c));
  const chips: number[] = [];
  for (const n of [...nodes].sort((a, b) => a - b))
    for (let i = 0; i < fabric.chipsPerNode; i++) chips.push(n * fabric.chipsPerNode + i);
  return chips;
}

const EMPTY: Program = {
  chip: -1,
  prefill: { kind: 'prefill', instructions: [] },
  decode: { kind: 'decode', instructions: [] },
};

function tensorMeta(step: Step, program: Program, kind: StepKind): Record<number, TensorMeta> {
  const out: Record<number, TensorMeta> = {};
  const add = (id: number) => {
    const t = step.tensors[id];
    out[id] = { name: t.name, rows: t.rows, cols: t.cols, dtype: t.dtype, bytes: t.bytes };
  };
  for (const ins of program[kind].instructions) {
    if (ins.kind === 'compute') {
      ins.inputs.forEach(add);
      add(ins.output);
    } else add(ins.tensor);
  }
  return out;
}

export interface ChipInitOptions {
  fidelity: Fidelity;
  watchdogMs: number;
}

export function chipInit(plan: Plan, fabric: Fabric, chip: number, o: ChipInitOptions): ChipInit {
  const program = plan.programs.get(chip) ?? { ...EMPTY, chip };
  const peers: Record<number, string> = {};
  for (const kind of ['prefill', 'decode'] as const) {
    for (const ins of program[kind].instructions) {
      if (ins.kind === 'send') peers[ins.to] = fabric.chipId(ins.to);
      if (ins.kind === 'recv') peers[ins.from] = fabric.chipId(ins.from);
    }
  }
  // micro-batch m's token ids are `tok.mb<m>` and `next.mb<m>` from m = 1 on (schedule.ts)
  const idsOf = (step: Step, name: string) =>
    Array.from({ length: step.microBatches }, (_, m) =>
      step.tensors.findIndex((t) => t.name === (m === 0 ? name : `${name}.mb${m}`)),
    );
  const isSampler = plan.layout.sampler === chip;
  return {
    chip,
    chipId: fabric.chipId(chip),
    model: plan.model,
    fidelity: o.fidelity,
    context: plan.options.context,
    batch: planSlots(plan.options),
    microBatches: plan.options.microBatches,
    prefillChunk: plan.options.prefillChunk,
    program,
    tensors: {
      prefill: tensorMeta(plan.steps.prefill, program, 'prefill'),
      decode: tensorMeta(plan.steps.decode, program, 'decode'),
    },
    peers,
    stepLengths: { prefill: plan.steps.prefill.lengthTicks, decode: plan.steps.decode.lengthTicks },
    startTick: plan.topology.sync.step_overhead_ticks,
    sampler: isSampler
      ? {
          tok: { prefill: idsOf(plan.steps.prefill, 'tok'), decode: idsOf(plan.steps.decode, 'tok') },
          next: { prefill: idsOf(plan.steps.prefill, 'next'), decode: idsOf(plan.steps.decode, 'next') },
        }
      : null,
    watchdogMs: o.watchdogMs,
  };
}

/** Every (src, dst) chip pair the schedule uses, by chip id (for the embedded transport's channels). */
export function schedulePairs(plan: Plan, fabric: Fabric): [string, string][] {
  const seen = new Set<string>();
  const pairs: [string, string][] = [];
  for (const step of [plan.steps.prefill, plan.steps.decode]) {
    for (const tr of step.transfers) {
      const k = tr.src < tr.dst ? `${tr.src}-${tr.dst}` : `${tr.dst}-${tr.src}`;
      if (seen.has(k)) continue;
      seen.add(k);
      pairs.push([fabric.chipId(tr.src), fabric.chipId(tr.dst)]);
    }
  }
  return pairs;
}
