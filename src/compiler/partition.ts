import { isMoe, type ModelConfig } from '../model/config.js';
import type { Fabric } from '../topology/fabric.js';
import { ACT_BYTES, KV_BYTES, type HardwareModel } from './cost.js';
import type { FfnUnit, Kernel } from './plan.js';

/**
 * Choosing how to split the model. Layers are cut into groups of `layersPerGroup` consecutive
 * layers; each group lives on `chipsPerGroup` chips (pipeline parallelism across groups). Inside a
 * group, attention is split by KV heads over the first `attentionChips` chips and every expert's
 * intermediate dimension is cut into one slice per chip (tensor parallelism inside each expert).
 *
 * Why slice every expert over every chip rather than give each expert its own chips (expert
 * parallelism): a decode step must reserve time for the worst routing. With slicing, a chip streams
 * at most min(experts, k x rows) slices of 1/S of an expert; with expert parallelism the chips of a
 * selected expert stream E/S of it. Slicing is never slower in this model and uses the same memory.
 */

export interface Candidate {
  readonly chipsPerGroup: number;
  readonly layersPerGroup: number;
  readonly groups: number;
  readonly attentionChips: number;
  /** Static bytes (weights + KV) on the heaviest chip of a group. */
  readonly maxChipBytes: number;
  /** Static bytes of all layer groups. */
  readonly layerBytes: number;
  readonly estimateTicks: number;
}

/** Largest divisor of n that is <= cap. */
export function largestDivisorAtMost(n: number, cap: number): number {
  for (let d = Math.min(n, cap); d >= 1; d--) if (n % d === 0) return d;
  return 1;
}

/** Slice i of `total` cut into `parts` near-equal contiguous pieces. */
export function sliceOf(total: number, parts: number, i: number): { start: number; end: number } {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  const start = i * base + Math.min(i, extra);
  return { start, end: start + base + (i < extra ? 1 : 0) };
}

/** The kernels chip `i` of a group runs for one layer. */
export function layerKernels(
  m: ModelConfig,
  layer: number,
  S: number,
  A: number,
  i: number,
): { attention?: Kernel; ffn: Kernel } {
  const units: FfnUnit[] = [];
  const s = sliceOf(m.intermediate, S, i);
  if (s.end > s.start) for (let e = 0; e < m.experts; e++) units.push({ expert: e, start: s.start, end: s.end });
  const ffn: Kernel = { kind: 'ffn', layer, units };
  if (i >= A) return { ffn };
  const kvPer = m.kvHeads / A;
  const group = m.heads / m.kvHeads;
  const attention: Kernel = {
    kind: 'attention',
    layer,
    kvHeadStart: i * kvPer,
    kvHeadEnd: (i + 1) * kvPer,
    headStart: i * kvPer * group,
    headEnd: (i + 1) * kvPer * group,
  };
  return { attention, ffn };
}

/** Static bytes one layer puts on chip i of a group: weights, norms, router copy and KV cache. */
export function layerBytesOnChip(hw: HardwareModel, S: number, A: number, i: number, batch: number, context: number) {
  const m = hw.model;
  const wb = hw.weightBytesPerParam;
  const s = sliceOf(m.intermediate, S, i);
  // experts + post-attention norm
  let weights = m.experts * 3 * m.hidden * (s.end - s.start) * wb + m.hidden * ACT_BYTES;
  if (isMoe(m)) weights += m.experts * m.hidden * wb; // router, replicated so each chip routes locally
  let kv = 0;
  if (i < A) {
    const kvPer = m.kvHeads / A;
    const heads = kvPer * (m.heads / m.kvHeads);
    weights += (m.hidden * (heads + 2 * kvPer) * m.headDim + heads * m.headDim * m.hidden) * wb + m.hidden * ACT_BYTES;
    kv = 2 * kvPer * m.headDim * context * batch * KV_BYTES;
  }
  return { weights, kv };
}

/** Analytic decode-step estimate used only to rank candidates; the chosen one is scheduled exactly. */
function estimate(
  hw: HardwareModel,
  fabric: Fabric,
  S: number,
  A: number,
  Lg: number,
  batch: number,
  context: number,
): number {
  const m = hw.model;
  const t = fabric.topology;
  const k0 = layerKernels(m, 0, S, A, 0);
  const attn = hw.opCost(k0.attention!, batch, batch, context, 1).ticks;
  const ffn = hw.opCost(k0.ffn, batch, batch, context, 1).ticks;
  const sumA = hw.opCost({ kind: 'sum', layer: 0, what: 'attention' }, batch, batch, context, A + 1).ticks;
  const sumF = hw.opCost({ kind: 'sum', layer: 0, what: 'ffn' }, batch, batch, context, S + 1).ticks;
  const local = t.links.local;
  const linkBytesPerTick = (local.lanes * local.lane_gbps) / 8 / hw.ticksPerNs;
  const ports = local.wiring === 'switch' ? 1 : local.per_chip + t.links.global.per_chip;
  const portBytesPerTick = local.wiring === 'switch' ? linkBytesPerTick * local.per_chip : linkBytesPerTick;
  const ser = (batch * m.hidden * ACT_BYTES) / portBytesPerTick;
  const hop = hw.nsToTicks(local.hop_latency_ns) * (S <= t.chips_per_node ? 1 : 3);
  const fan = (n: number) => (n <= 0 ? 0 : Math.ceil(n / ports) * ser + hop);
  const comm = 2 * fan(A - 1) + 2 * fan(S - 1);
  const perLayer = attn + ffn + sumA + sumF + comm;
  const groups = Math.ceil(m.layers / Lg);
  return m.layers * perLayer + groups * (hop + ser);
}

/**
 * All (chips per group, layers per group) splits whose heaviest chip fits, best first. `reserve` is
 * per-chip headroom kept for activations and for spreading the embedding and lm_head.
 */
export function candidates(
  hw: HardwareModel,
  fabric: Fabric,
  activeChips: number,
  batch: number,
  context: number,
  reserve: number,
  /** Micro-batches of `batch` pipelined through the groups: splits with fewer groups are left out. */
  microBatches = 1,
): Candidate[] {
  const m = hw.model;
  const out: Candidate[] = [];
  const maxS = Math.min(activeChips, m.intermediate, 1024);
  for (let S = 1; S <= maxS; S++) {
    const A = largestDivisorAtMost(m.kvHeads, S);
    let perLayer0 = 0; // heaviest chip is an attention chip (index 0) by construction
    let perLayerAll = 0;
    for (let i = 0; i < S; i++) {
      const b = layerBytesOnChip(hw, S, A, i, batch * microBatches, context);
      if (i === 0) perLayer0 = b.weights + b.kv;
      perLayerAll += b.weights + b.kv;
    }
    for (let Lg = 1; Lg <= m.layers; Lg++) {
      const groups = Math.ceil(m.layers / Lg);
      if (groups * S > activeChips || groups < microBatches) continue;
      // consecutive Lg values with the same group count only add load per chip
      if (Lg > 1 && Math.ceil(m.layers / (Lg - 1)) === groups) continue;
      const maxChipBytes = Lg * perLayer0;
      if (maxChipBytes + reserve > hw.capacityBytes) break; // larger Lg only adds bytes per chip
      out.push({
        chipsPerGroup: S,
        layersPerGroup: Lg,
        groups,
        attentionChips: A,
        maxChipBytes,
        layerBytes: m.layers * perLayerAll,
        // a pipelined step: the first micro-batch's latency, then one group's share per further micro-batch
        estimateTicks: (() => {
          const latency = estimate(hw, fabric, S, A, Lg, batch, context);
          return latency + ((microBatches - 1) * latency) / groups;
        })(),
      });
    }
  }
  out.sort((a, b) => a.estimateTicks - b.estimateTicks || a.groups * a.chipsPerGroup - b.groups * b.chipsPerGroup);
  return out;
}
