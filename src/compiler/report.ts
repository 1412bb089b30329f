import { Fabric } from '../topology/fabric.js';
import { criticalPath } from './critical-path.js';
import { controlPlane, occupiedNodes, type ControlPlaneReport } from './control-plane.js';
import { planSlots, type LinkUtilisation, type Plan, type Prediction, type Step } from './plan.js';

/**
 * Predicted performance, power and cost of a Plan, in the units users compare (ms, tokens/s, W, USD).
 * Everything is read off the scheduled steps; nothing here is fitted.
 */

export interface CompileReport {
  topology: string;
  model: string;
  dtype: string;
  batch: number;
  context: number;
  prompt_tokens: number;
  prefill_chunk: number;
  fits: true;
  chips: { total: number; active: number; spare: number; used: number; idle: number };
  sram: {
    kind: 'sram' | 'hbm';
    capacity_bytes: number;
    min_used_bytes: number;
    mean_used_bytes: number;
    max_used_bytes: number;
  };
  layout: {
    groups: number;
    chips_per_group: number;
    layers_per_group: number;
    attention_chips_per_group: number;
    ffn_slices: number;
    embed_chips: number;
    lm_head_chips: number;
    sampler: string;
    why: string;
    per_layer: { layer: number; chips: string; lead: string }[];
  };
  predicted: Prediction;
  links: LinkUtilisation;
  /** Power of the nodes the plan occupies (used chips busy, their node-mates idle, hosts). */
  power_w: number;
  nodes_occupied: number;
  cost_per_million_tokens_usd: number;
  messages_per_token: number;
  bytes_per_token: number;
  /** Micro-batches each step pipelines through the layer groups. */
  micro_batches: number;
  /** Where the decode step's pipeline idles (its bubble). */
  pipeline: PipelineReport;
  decode_step: { ticks: number; ops: number; transfers: number };
  calibrated: { key: string; figure: string }[];
  /** Host agents and their CPUs, PCIe load and RAM (control-plane.ts). */
  control_plane: ControlPlaneReport;
}

/**
 * The pipeline's bubble in the decode step, per layer group: the share of the step its busiest chip
 * computes, and the idle shares before its first op (fill) and after its last (drain); averages over
 * groups. With one micro-batch a group works for about 1/groups of the step.
 */
export interface PipelineReport {
  readonly groups: number;
  readonly micro_batches: number;
  readonly group_busy: number;
  readonly fill: number;
  readonly drain: number;
  /** Per micro-batch, ms into the decode step at which its sampled ids are ready (the step is as long as the last). */
  readonly ids_ready_ms: readonly number[];
}

function pipeline(plan: Plan): PipelineReport {
  const step = plan.steps.decode;
  const groupOf = new Map<number, number>();
  plan.layout.groups.forEach((g, i) => g.chips.forEach((c) => groupOf.set(c, i)));
  const G = plan.layout.groups.length;
  const busy = Array.from({ length: G }, () => new Map<number, number>());
  const first = new Array<number>(G).fill(Number.POSITIVE_INFINITY);
  const last = new Array<number>(G).fill(0);
  for (const op of step.ops) {
    const g = groupOf.get(op.chip);
    if (g === undefined || (op.kernel.kind !== 'attention' && op.kernel.kind !== 'ffn')) continue;
    busy[g].set(op.chip, (busy[g].get(op.chip) ?? 0) + op.end - op.start);
    first[g] = Math.min(first[g], op.start);
    last[g] = Math.max(last[g], op.end);
  }
  const L = step.lengthTicks;
  const mean = (f: (g: number) => number) => Array.from({ length: G }, (_, g) => f(g)).reduce((a, b) => a + b, 0) / G;
  return {
    groups: G,
    micro_batches: plan.options.microBatches,
    group_busy: mean((g) => Math.max(0, ...busy[g].values()) / L),
    fill: mean((g) => (Number.isFinite(first[g]) ? first[g] / L : 0)),
    drain: mean((g) => (L - last[g]) / L),
    ids_ready_ms: step.ops.filter((op) => op.kernel.kind === 'sample').map((op) => ms(plan, op.end)),
  };
}

function ms(plan: Plan, ticks: number): number {
  return ticks / (plan.topology.chip.clock_mhz * 1e3);
}

/** The decode step's critical path (critical-path.ts), split into compute, transfer and sync. */
function breakdown(plan: Plan, step: Step): Prediction['breakdown'] {
  let compute = 0;
  let transfer = 0;
  for (const seg of criticalPath(step)) {
    if (seg.kind === 'op') compute += seg.end - seg.start;
    else transfer += seg.end - seg.start;
  }
  const sync = plan.topology.sync.step_overhead_ticks;
  return { compute_ms: ms(plan, compute), transfer_ms: ms(plan, transfer), sync_ms: ms(plan, sync) };
}

function linkUtilisation(fabric: Fabric, step: Step): LinkUtilisation {
  const busy = new Map<number, number>();
  for (const tr of step.transfers) for (const id of tr.links) busy.set(id, (busy.get(id) ?? 0) + tr.busyTicks);
  let max = 0;
  let sum = 0;
  let busiest = '';
  for (const [id, b] of busy) {
    const u = b / step.lengthTicks;
    sum += u;
    if (u > max) {
      max = u;
      busiest = fabric.links[id].name;
    }
  }
  return { used_links: busy.size, max, mean: busy.size ? sum / busy.size : 0, busiest };
}

export function predict(plan: Plan): Prediction {
  const o = plan.options;
  const prefillSteps = Math.ceil(o.promptTokens / o.prefillChunk);
  const prefill = plan.steps.prefill.lengthTicks;
  const decode = plan.steps.decode.lengthTicks;
  const tpot = ms(plan, decode);
  return {
    ttft_ms: ms(plan, prefill * prefillSteps),
    tpot_ms: tpot,
    tokens_per_s_per_user: 1000 / tpot,
    tokens_per_s_total: (1000 / tpot) * planSlots(o),
    prefill_step_ms: ms(plan, prefill),
    prefill_steps: prefillSteps,
    breakdown: breakdown(plan, plan.steps.decode),
  };
}

export function report(plan: Plan, fabric = new Fabric(plan.topology)): CompileReport {
  const t = plan.topology;
  const o = plan.options;
  const used = plan.placement.filter((p) => p.role !== 'spare' && p.role !== 'idle');
  const spare = plan.placement.filter((p) => p.role === 'spare').length;
  const total = plan.placement.length;
  const memUsed = used.map(
    (p) =>
      p.memory.weightBytes +
      p.memory.kvBytes +
      Math.max(p.memory.peakActivationBytes.prefill, p.memory.peakActivationBytes.decode),
  );
  const predicted = predict(plan);
  // Power and cost are those of the nodes the plan occupies: every node holding a used chip, plus the
  // spare nodes of the racks those are in (they stand by for failover). The rest of a big topology is
  // free for other work and is not charged to this model.
  const nodes = occupiedNodes(plan, fabric).length;
  const chipsInNodes = nodes * t.chips_per_node;
  const power =
    used.length * t.chip.power_w + (chipsInNodes - used.length) * t.chip.idle_power_w + nodes * t.host.power_w;
  const capexPerHour = (nodes * t.prices.node_usd) / (t.prices.amortisation_years * 365 * 24);
  const energyPerHour = (power / 1000) * t.prices.electricity_usd_per_kwh;
  // tokens actually served: the predicted rate for the share of hours the system is busy
  const tokensPerHour = predicted.tokens_per_s_total * 3600 * t.prices.utilisation;
  const decode = plan.steps.decode;
  const bytes = decode.transfers.reduce((s, tr) => s + tr.bytes, 0);
  return {
    topology: t.name,
    model: plan.model.name,
    dtype: o.dtype,
    batch: o.batch,
    context: o.context,
    prompt_tokens: o.promptTokens,
    prefill_chunk: o.prefillChunk,
    fits: true,
    chips: { total, active: total - spare, spare, used: used.length, idle: total - spare - used.length },
    sram: {
      kind: plan.memoryKind,
      capacity_bytes: plan.capacityBytes,
      min_used_bytes: Math.min(...memUsed),
      mean_used_bytes: memUsed.reduce((a, b) => a + b, 0) / memUsed.length,
      max_used_bytes: Math.max(...memUsed),
    },
    layout: {
      groups: plan.layout.groups.length,
      chips_per_group: plan.layout.chipsPerGroup,
      layers_per_group: plan.layout.layersPerGroup,
      attention_chips_per_group: plan.layout.attentionChips,
      ffn_slices: plan.layout.ffnSlices,
      embed_chips: plan.layout.embed.length,
      lm_head_chips: plan.layout.lmHead.length,
      sampler: fabric.chipId(plan.layout.sampler),
      why: plan.layout.why,
      per_layer: plan.layout.groups.flatMap((g) =>
        g.layers.map((layer) => ({ layer, chips: chipRange(fabric, g.chips), lead: fabric.chipId(g.lead) })),
      ),
    },
    predicted,
    links: linkUtilisation(fabric, decode),
    power_w: power,
    nodes_occupied: nodes,
    cost_per_million_tokens_usd: ((capexPerHour + energyPerHour) / tokensPerHour) * 1e6,
    messages_per_token: decode.transfers.length / planSlots(o),
    bytes_per_token: bytes / planSlots(o),
    micro_batches: o.microBatches,
    pipeline: pipeline(plan),
    decode_step: { ticks: decode.lengthTicks, ops: decode.ops.length, transfers: decode.transfers.length },
    calibrated: (t.calibrated ?? []).map((c) => ({ key: c.key, figure: c.figure })),
    control_plane: controlPlane(plan, fabric, predicted),
  };
}

/** "r0.n0.c0..r0.n1.c7" for a contiguous run of chips, else a count. */
function chipRange(fabric: Fabric, chips: readonly number[]): string {
  if (chips.length === 1) return fabric.chipId(chips[0]);
  const contiguous = chips.every((c, i) => i === 0 || c === chips[i - 1] + 1);
  return contiguous
    ? `${fabric.chipId(chips[0])}..${fabric.chipId(chips[chips.length - 1])}`
    : `${chips.length} chips from ${fabric.chipId(chips[0])}`;
}
