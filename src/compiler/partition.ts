import { isMoe, type ModelConfig } from '../model/config.js';
import type { Fabric } from '../topology/fabric.js';
import { ACT_BYTES, KV_BYTES, type HardwareModel } from './cost.js';
import type { FfnUnit, Kernel, LayoutSearch } from './plan.js';

/**
 * Choosing how to split the model. Layers are cut into groups of `layersPerGroup` consecutive
 * layers; each group lives on `shape.chips` chips (pipeline parallelism across groups). Inside a
 * group, attention is cut into `shape.attention` parts by KV heads or by query-head groups, and every
 * expert's intermediate dimension into `shape.ffn` slices (tensor parallelism inside each expert).
 *
 * Why slice every expert over every chip rather than give each expert its own chips (expert
 * parallelism): a decode step must reserve time for the worst routing. With slicing, a chip streams
 * at most min(experts, k x rows) slices of 1/S of an expert; with expert parallelism the chips of a
 * selected expert stream E/S of it. Slicing is never slower in this model and uses the same memory.
 */

/**
 * How one layer group's chips share each of its layers. Chips [0, attention) hold one attention part
 * each; chips [chips - ffn, chips) hold FFN slice i - (chips - ffn) of every expert. With
 * ffn = chips the attention parts sit on chips that also hold FFN slices; with ffn = chips - attention
 * they have chips of their own (dedicated attention chips).
 */
export interface GroupShape {
  readonly chips: number;
  readonly attention: number;
  readonly ffn: number;
}

/** The FFN slice chip i of a group holds, or a negative number if it holds none. */
export function ffnSliceOf(shape: GroupShape, i: number): number {
  return i - (shape.chips - shape.ffn);
}

/** Per-chip headroom for activations with S partials to sum: partials in and out, the residual, slack. */
export function activationReserve(S: number, rows: number, m: ModelConfig): number {
  return (2 * S + 8) * rows * m.hidden * ACT_BYTES;
}

export interface Candidate {
  readonly shape: GroupShape;
  readonly layersPerGroup: number;
  readonly groups: number;
  /** Static bytes (weights + KV) on the heaviest chip of a group. */
  readonly maxChipBytes: number;
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

/**
 * The numbers of attention parts a layer can be cut into: A divides the query heads, and each part
 * reads whole KV heads (A divides the KV heads: a split by KV heads) or one KV head shared with
 * other parts (the KV heads divide A: a split by query-head groups, each part keeping its own copy of
 * its KV head's projections and cache). Parts that straddle KV-head boundaries are left out: they
 * would hold two partial groups' caches for no gain over the next finer split.
 */
export function attentionSplits(m: ModelConfig): number[] {
  const out: number[] = [];
  for (let a = 1; a <= m.heads; a++) {
    if (m.heads % a === 0 && (m.kvHeads % a === 0 || a % m.kvHeads === 0)) out.push(a);
  }
  return out;
}

/** Query heads [headStart, headEnd) of attention part i of A, and the KV heads they read. */
export function attentionPart(m: ModelConfig, A: number, i: number) {
  const perPart = m.heads / A;
  const group = m.heads / m.kvHeads;
  const headStart = i * perPart;
  const headEnd = headStart + perPart;
  return { headStart, headEnd, kvHeadStart: Math.floor(headStart / group), kvHeadEnd: Math.ceil(headEnd / group) };
}

/** The kernels chip `i` of a group runs for one layer. */
export function layerKernels(
  m: ModelConfig,
  layer: number,
  shape: GroupShape,
  i: number,
): { attention?: Kernel; ffn?: Kernel } {
  const out: { attention?: Kernel; ffn?: Kernel } = {};
  if (i < shape.attention) out.attention = { kind: 'attention', layer, ...attentionPart(m, shape.attention, i) };
  const j = ffnSliceOf(shape, i);
  if (j >= 0) {
    const units: FfnUnit[] = [];
    const s = sliceOf(m.intermediate, shape.ffn, j);
    if (s.end > s.start) for (let e = 0; e < m.experts; e++) units.push({ expert: e, start: s.start, end: s.end });
    if (units.length > 0) out.ffn = { kind: 'ffn', layer, units };
  }
  return out;
}

/** Static bytes of attention part i of A for one layer: weights, input norm and KV cache. */
export function attentionBytes(hw: HardwareModel, A: number, i: number, batch: number, context: number) {
  const m = hw.model;
  const p = attentionPart(m, A, i);
  const heads = p.headEnd - p.headStart;
  const kvHeads = p.kvHeadEnd - p.kvHeadStart;
  // projections (and their biases), then the input norm and the per-head q/k norms
  const weights =
    (m.hidden * (heads + 2 * kvHeads) * m.headDim + heads * m.headDim * m.hidden) * hw.weightBytesPerParam +
    (m.attentionBias ? (heads + 2 * kvHeads) * m.headDim * hw.weightBytesPerParam : 0) +
    m.hidden * ACT_BYTES +
    (m.qkNorm ? 2 * m.headDim * ACT_BYTES : 0);
  return { weights, kv: 2 * kvHeads * m.headDim * context * batch * KV_BYTES };
}

/** Static bytes of FFN slice j of F for one layer: expert slices, post-attention norm and router copy. */
export function ffnBytes(hw: HardwareModel, F: number, j: number): number {
  const m = hw.model;
  const wb = hw.weightBytesPerParam;
  const s = sliceOf(m.intermediate, F, j);
  // the router is replicated so each chip routes locally
  return (
    m.experts * 3 * m.hidden * (s.end - s.start) * wb +
    m.hidden * ACT_BYTES +
    (isMoe(m) ? m.experts * m.hidden * wb : 0)
  );
}

/** Static bytes one layer puts on chip i of a group: weights, norms, router copy and KV cache. */
export function layerBytesOnChip(
  hw: HardwareModel,
  shape: GroupShape,
  i: number,
  batch: number,
  context: number,
): { weights: number; kv: number } {
  let weights = 0;
  let kv = 0;
  if (i < shape.attention) {
    const a = attentionBytes(hw, shape.attention, i, batch, context);
    weights += a.weights;
    kv += a.kv;
  }
  const j = ffnSliceOf(shape, i);
  if (j >= 0) weights += ffnBytes(hw, shape.ffn, j);
  return { weights, kv };
}

/** Static bytes one layer puts on the heaviest chip of a group. */
function heaviestChipBytes(hw: HardwareModel, shape: GroupShape, batch: number, context: number): number {
  const a = attentionBytes(hw, shape.attention, 0, batch, context);
  const attention = a.weights + a.kv; // every part of an aligned split is the same size
  const ffn0 = ffnBytes(hw, shape.ffn, 0); // slice 0 is the largest
  return shape.ffn < shape.chips ? Math.max(attention, ffn0) : attention + ffn0;
}

/** Analytic decode-step estimate used only to rank candidates; the chosen one is scheduled exactly. */
function estimate(hw: HardwareModel, fabric: Fabric, shape: GroupShape, batch: number, context: number) {
  const m = hw.model;
  const t = fabric.topology;
  const attn = hw.opCost(layerKernels(m, 0, shape, 0).attention!, batch, batch, context, 1).ticks;
  const ffn = hw.opCost(layerKernels(m, 0, shape, shape.chips - shape.ffn).ffn!, batch, batch, context, 1).ticks;
  const sumA = hw.opCost(
    { kind: 'sum', layer: 0, what: 'attention' },
    batch,
    batch,
    context,
    shape.attention + 1,
  ).ticks;
  const sumF = hw.opCost({ kind: 'sum', layer: 0, what: 'ffn' }, batch, batch, context, shape.ffn + 1).ticks;
  const local = t.links.local;
  const linkBytesPerTick = (local.lanes * local.lane_gbps) / 8 / hw.ticksPerNs;
  const ports = local.wiring === 'switch' ? 1 : local.per_chip + t.links.global.per_chip;
  const portBytesPerTick = local.wiring === 'switch' ? linkBytesPerTick * local.per_chip : linkBytesPerTick;
  const ser = (batch * m.hidden * ACT_BYTES) / portBytesPerTick;
  const hop = hw.nsToTicks(local.hop_latency_ns) * (shape.chips <= t.chips_per_node ? 1 : 3);
  // Chips of the group outside the lead's rack are reached over the few global links that join two
  // racks (a Dragonfly spreads each rack's global ports over all the others).
  const rackChips = (t.nodes_per_rack - t.spare_nodes_per_rack) * t.chips_per_node;
  const rackPorts = t.nodes_per_rack * t.chips_per_node * t.links.global.per_chip;
  const pairLinks = t.racks > 1 ? Math.max(1, Math.floor(rackPorts / (t.racks - 1))) : Infinity;
  const fan = (n: number) => {
    if (n <= 0) return 0;
    const remote = Math.min(Math.max(0, n + 1 - rackChips), rackChips);
    return Math.max(Math.ceil(n / ports), Math.ceil(remote / pairLinks)) * ser + hop;
  };
  // the lead (chip 0) holds an attention part, and an FFN slice unless attention has chips of its own
  const ffnAway = shape.ffn < shape.chips ? shape.ffn : shape.ffn - 1;
  const comm = 2 * fan(shape.attention - 1) + 2 * fan(ffnAway);
  const perLayer = attn + ffn + sumA + sumF + comm;
  return { perLayer: m.layers * perLayer, perGroup: hop + ser };
}

/**
 * Every shape a group of at most `maxChips` chips can take. Classic: every chip holds an FFN slice
 * and the first of them the attention split by as many KV heads as divide evenly.
 */
function* shapes(m: ModelConfig, maxChips: number, search: LayoutSearch): Generator<GroupShape> {
  const splits = attentionSplits(m);
  const maxSlices = Math.min(maxChips, m.intermediate, 1024);
  for (let F = 1; F <= maxSlices; F++) {
    if (search === 'classic') {
      yield { chips: F, attention: largestDivisorAtMost(m.kvHeads, F), ffn: F };
      continue;
    }
    for (const A of splits) {
      if (A <= F) yield { chips: F, attention: A, ffn: F };
      if (A + F <= maxChips) yield { chips: A + F, attention: A, ffn: F };
    }
  }
}

/**
 * All (group shape, layers per group) splits whose heaviest chip fits, best first. `reserve` is
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
  microBatches: number,
  search: LayoutSearch,
): Candidate[] {
  const m = hw.model;
  const out: Candidate[] = [];
  for (const shape of shapes(m, activeChips, search)) {
    const heaviest = heaviestChipBytes(hw, shape, batch * microBatches, context);
    if (heaviest + reserve > hw.capacityBytes) continue;
    let est: ReturnType<typeof estimate> | null = null;
    for (let Lg = 1; Lg <= m.layers; Lg++) {
      const groups = Math.ceil(m.layers / Lg);
      if (groups * shape.chips > activeChips || groups < microBatches) continue;
      // consecutive Lg values with the same group count only add load per chip
      if (Lg > 1 && Math.ceil(m.layers / (Lg - 1)) === groups) continue;
      const maxChipBytes = Lg * heaviest;
      if (maxChipBytes + reserve > hw.capacityBytes) break; // larger Lg only adds bytes per chip
      est ??= estimate(hw, fabric, shape, batch, context);
      const latency = est.perLayer + groups * est.perGroup;
      out.push({
        shape,
        layersPerGroup: Lg,
        groups,
        maxChipBytes,
        // a pipelined step: the first micro-batch's latency, then one group's share per further micro-batch
        estimateTicks: latency + ((microBatches - 1) * latency) / groups,
      });
    }
  }
  // ties: fewer chips, then fewer attention parts (less KV replication)
  out.sort(
    (a, b) =>
      a.estimateTicks - b.estimateTicks ||
      a.groups * a.shape.chips - b.groups * b.shape.chips ||
      a.shape.attention - b.shape.attention,
  );
  return out;
}

/**
 * The smallest static share of one layer any chip must hold when every layer gets its own group of
 * floor(activeChips / layers) chips (the finest split the topology allows), over every group shape:
 * when even that (with headroom) does not fit a chip, no number of chips of this size fits the model.
 */
export function finestShare(
  hw: HardwareModel,
  activeChips: number,
  batch: number,
  context: number,
): { shape: GroupShape; bytes: number } {
  const m = hw.model;
  const maxChips = Math.max(1, Math.floor(activeChips / m.layers));
  let best: { shape: GroupShape; bytes: number } | null = null;
  for (const shape of shapes(m, maxChips, 'full')) {
    const bytes = heaviestChipBytes(hw, shape, batch, context);
    if (best === null || bytes < best.bytes) best = { shape, bytes };
  }
  return best!;
}
