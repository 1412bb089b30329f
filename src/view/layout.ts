import { criticalPath } from '../compiler/critical-path.js';
import type { Plan, Step } from '../compiler/plan.js';
import { predict } from '../compiler/report.js';
import { chipsOfPlan } from '../control/metrics.js';
import type { Fabric } from '../topology/fabric.js';
import type { ViewChip, ViewLayout, ViewStepProfile } from './protocol.js';

/** Stretches of a step the timeline strip shows per rack. */
export const PROFILE_BINS = 96;

/** Per chip, the share of a step it computes and the share its sends keep its first link busy. */
function shares(step: Step, chips: number): { compute: Float64Array; send: Float64Array } {
  const compute = new Float64Array(chips);
  const send = new Float64Array(chips);
  const L = Math.max(1, step.lengthTicks);
  for (const op of step.ops) compute[op.chip] += (op.end - op.start) / L;
  for (const tr of step.transfers) send[tr.src] += tr.busyTicks / L;
  for (let c = 0; c < chips; c++) {
    compute[c] = Math.min(1, compute[c]);
    send[c] = Math.min(1, send[c]);
  }
  return { compute, send };
}

/**
 * The step as the timeline strip draws it: per rack, the share of its chips with work that compute
 * or send in each of PROFILE_BINS stretches; and its critical path, from the same walk as the
 * compiler's prediction breakdown.
 */
export function stepProfile(plan: Plan, fabric: Fabric, step: Step): ViewStepProfile {
  const racks = plan.topology.racks;
  const L = Math.max(1, step.lengthTicks);
  const bins = PROFILE_BINS;
  const binOf = (tick: number) => Math.min(bins - 1, Math.floor((tick / L) * bins));
  const busy = new Uint8Array(fabric.chipCount * bins);
  const mark = (chip: number, start: number, end: number) => {
    for (let b = binOf(start); b <= binOf(Math.max(start, end - 1)); b++) busy[chip * bins + b] = 1;
  };
  for (const op of step.ops) mark(op.chip, op.start, op.end);
  for (const tr of step.transfers) mark(tr.src, tr.depart, tr.depart + tr.busyTicks);
  const working = new Array<number>(racks).fill(0);
  for (const chip of plan.programs.keys()) working[fabric.rackOf(chip)]++;
  const counts = Array.from({ length: racks }, () => new Array<number>(bins).fill(0));
  for (const chip of plan.programs.keys()) {
    const row = counts[fabric.rackOf(chip)];
    for (let b = 0; b < bins; b++) row[b] += busy[chip * bins + b];
  }
  const rackActivity = counts.map((row, r) =>
    row.map((n) => (working[r] === 0 ? '0' : String(Math.min(9, Math.ceil((9 * n) / working[r]))))).join(''),
  );
  const path = criticalPath(step).map((seg) => {
    if (seg.kind === 'op') {
      const k = step.ops[seg.op].kernel;
      const rack = fabric.rackOf(seg.chip);
      const what = 'layer' in k ? `${k.kind} L${k.layer}` : k.kind;
      return {
        kind: seg.kind,
        fromRack: rack,
        toRack: rack,
        start: seg.start,
        end: seg.end,
        label: `${what} on ${fabric.chipId(seg.chip)}`,
      };
    }
    const tensor = step.tensors[step.transfers[seg.transfer].tensor].name;
    return {
      kind: seg.kind,
      fromRack: fabric.rackOf(seg.src),
      toRack: fabric.rackOf(seg.dst),
      start: seg.start,
      end: seg.end,
      label: `${tensor} ${fabric.chipId(seg.src)} -> ${fabric.chipId(seg.dst)}`,
    };
  });
  return { lengthTicks: step.lengthTicks, rackActivity, bins, criticalPath: path };
}

/** Everything the page draws that changes only with the Plan: chips, what they hold, step profiles. */
export function viewLayout(plan: Plan, fabric: Fabric, fidelity: string, planId: number): ViewLayout {
  const n = fabric.chipCount;
  const decode = shares(plan.steps.decode, n);
  const prefill = shares(plan.steps.prefill, n);
  const retired = new Set(plan.retired ?? []);
  const status = chipsOfPlan(plan, fabric);
  const chips: ViewChip[] = plan.placement.map((p, c) => ({
    id: fabric.chipId(c),
    role: p.role,
    holds: p.holds,
    sramUsedBytes: status[c].sramUsedBytes,
    decode: { compute: decode.compute[c], send: decode.send[c] },
    prefill: { compute: prefill.compute[c], send: prefill.send[c] },
    retired: retired.has(fabric.globalNodeOf(c)),
  }));
  const p = predict(plan);
  return {
    planId,
    topology: plan.topology.name,
    model: plan.model.name,
    fidelity,
    racks: plan.topology.racks,
    nodesPerRack: fabric.nodesPerRack,
    chipsPerNode: fabric.chipsPerNode,
    sramCapacityBytes: plan.capacityBytes,
    memoryKind: plan.memoryKind,
    clockMhz: plan.topology.chip.clock_mhz,
    chips,
    steps: {
      prefill: stepProfile(plan, fabric, plan.steps.prefill),
      decode: stepProfile(plan, fabric, plan.steps.decode),
    },
    predicted: { ttftMs: p.ttft_ms, tpotMs: p.tpot_ms, tokensPerSPerUser: p.tokens_per_s_per_user },
    why: plan.layout.why,
  };
}
