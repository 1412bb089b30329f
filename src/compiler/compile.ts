import { bytesPerParam, paramCounts, kvBytesPerToken, type ModelConfig, type WeightDtype } from '../model/config.js';
import { Fabric } from '../topology/fabric.js';
import type { Topology } from '../topology/types.js';
import { CompileError } from '../util/errors.js';
import { ACT_BYTES, HardwareModel, KV_BYTES } from './cost.js';
import { resolveOptions, type CompileOptions } from './options.js';
import { candidates, largestDivisorAtMost, layerBytesOnChip, type Candidate } from './partition.js';
import {
  planSlots,
  type ChipPlacement,
  type Layout,
  type LayerGroup,
  type Plan,
  type ResolvedCompileOptions,
  type Step,
  type VocabSlice,
} from './plan.js';
import { buildPrograms } from './programs.js';
import { peakActivationBytes, StepBuilder } from './schedule.js';

/**
 * The compiler: topology + model -> Plan. Pure: reads nothing, writes nothing.
 *   1. rank splits of the model over chips by an analytic estimate (partition.ts);
 *   2. lay the best split onto active chips, spread embedding and lm_head into the room left;
 *   3. schedule a prefill step and a decode step tick by tick (schedule.ts);
 *   4. check every chip's memory at its peak; shrink the prefill chunk or move on to the next split if not.
 */
/** Prefill rows per sequence that the per-chip activation headroom is first sized for. */
const PREFILL_RESERVE_ROWS = 64;

export function compile(
  topology: Topology,
  model: ModelConfig,
  options: CompileOptions = {},
  fabric = new Fabric(topology),
  /** Internal (re-planning): the chips to lay groups onto, in order; default every non-spare chip. */
  active: readonly number[] = defaultActive(fabric),
): Plan {
  const opts = resolveOptions(model, options);
  const hw = new HardwareModel(topology, model, opts.dtype);

  // Per-chip headroom for activations: first try room for a useful prefill chunk, then the bare decode minimum.
  const reserveRows = [...new Set([opts.batch * Math.min(opts.prefillChunk, PREFILL_RESERVE_ROWS), opts.batch])];
  for (const rows of reserveRows) {
    const reserve = (S: number) => (2 * S + 8) * rows * model.hidden * ACT_BYTES;
    const ranked = candidates(hw, fabric, active.length, opts.batch, opts.context, reserve(1), opts.microBatches);
    for (const cand of ranked.slice(0, 64)) {
      const layout = layOut(hw, fabric, cand, active, reserve(cand.chipsPerGroup), opts);
      if (!layout) continue;
      const plan = scheduleFitting(hw, fabric, layout, opts);
      if (plan) return plan;
    }
  }
  throw doesNotFit(topology, model, opts, hw, active.length, fabric.chipCount);
}

/** Every non-spare chip in service, in rack/node/chip order. */
export function defaultActive(fabric: Fabric): number[] {
  const active: number[] = [];
  for (let c = 0; c < fabric.chipCount; c++) if (!fabric.isSpare(c) && !fabric.failedChips.has(c)) active.push(c);
  return active;
}

/** Schedules both steps, halving the prefill chunk until every chip's peak fits; null if decode itself cannot fit. */
function scheduleFitting(
  hw: HardwareModel,
  fabric: Fabric,
  layout: LaidOut,
  initial: ResolvedCompileOptions,
): Plan | null {
  const topology = hw.topology;
  let opts = initial;
  for (;;) {
    const start = topology.sync.step_overhead_ticks;
    const M = opts.microBatches;
    const decode = new StepBuilder(hw, fabric, 'decode', opts.batch, 1, opts.context, M).build(layout.layout, start);
    const prefill = new StepBuilder(hw, fabric, 'prefill', opts.batch, opts.prefillChunk, opts.context, M).build(
      layout.layout,
      start,
    );
    const peakD = peakActivationBytes(decode);
    const peakP = peakActivationBytes(prefill);
    let decodeFits = true;
    let prefillFits = true;
    for (let c = 0; c < fabric.chipCount; c++) {
      const s = layout.staticBytes[c];
      if (s + (peakD.get(c) ?? 0) > hw.capacityBytes) decodeFits = false;
      if (s + (peakP.get(c) ?? 0) > hw.capacityBytes) prefillFits = false;
    }
    if (!decodeFits) return null;
    if (!prefillFits) {
      if (opts.prefillChunk === 1) return null;
      opts = { ...opts, prefillChunk: Math.max(1, opts.prefillChunk >> 1) };
      continue;
    }
    return {
      topology,
      model: hw.model,
      options: opts,
      layout: layout.layout,
      placement: placementOf(fabric, layout, peakP, peakD),
      steps: { prefill, decode },
      programs: buildPrograms({ prefill, decode }),
      capacityBytes: hw.capacityBytes,
      memoryKind: hw.memoryKind,
    };
  }
}

interface LaidOut {
  layout: Layout;
  staticBytes: Float64Array;
  weightBytes: Float64Array;
  kvBytes: Float64Array;
  holds: string[][];
  layersOf: number[][];
}

/** Assigns a split to concrete chips: group g takes the next S active chips, in rack/node/chip order. */
function layOut(
  hw: HardwareModel,
  fabric: Fabric,
  cand: Candidate,
  active: readonly number[],
  reserve: number,
  opts: ResolvedCompileOptions,
): LaidOut | null {
  const m = hw.model;
  const n = fabric.chipCount;
  const weightBytes = new Float64Array(n);
  const kvBytes = new Float64Array(n);
  const holds: string[][] = Array.from({ length: n }, () => []);
  const layersOf: number[][] = Array.from({ length: n }, () => []);
  const S = cand.chipsPerGroup;
  const A = cand.attentionChips;
  const groups: LayerGroup[] = [];
  for (let g = 0; g < cand.groups; g++) {
    const chips = active.slice(g * S, (g + 1) * S);
    const layers: number[] = [];
    for (let l = g * cand.layersPerGroup; l < Math.min(m.layers, (g + 1) * cand.layersPerGroup); l++) layers.push(l);
    chips.forEach((chip, i) => {
      // every micro-batch keeps its own KV cache
      const b = layerBytesOnChip(hw, S, A, i, planSlots(opts), opts.context);
      weightBytes[chip] += b.weights * layers.length;
      kvBytes[chip] += b.kv * layers.length;
      layersOf[chip].push(...layers);
      const span = layers.length === 1 ? `L${layers[0]}` : `L${layers[0]}-${layers[layers.length - 1]}`;
      holds[chip].push(
        i < A
          ? `${span} attention kv-heads ${(i * m.kvHeads) / A}-${((i + 1) * m.kvHeads) / A - 1} + FFN slice ${i}/${S}`
          : `${span} FFN slice ${i}/${S}`,
      );
    });
    groups.push({ layers, chips, lead: chips[0] });
  }
  const used = new Set(groups.flatMap((g) => g.chips));
  const free = (chip: number) => hw.capacityBytes - weightBytes[chip] - kvBytes[chip] - reserve;
  const rowBytes = m.hidden * hw.weightBytesPerParam;
  // Preferred chips: near where the slice is used, then chips no group uses, then the rest.
  const unused = active.filter((c) => !used.has(c));
  const firstChips = groups[0].chips;
  const lastChips = groups[groups.length - 1].chips;
  const others = (exclude: readonly number[]) => active.filter((c) => used.has(c) && !exclude.includes(c));
  const embed = spread(m.vocab, rowBytes, [...firstChips, ...unused, ...others(firstChips)], free, weightBytes);
  if (!embed) return null;
  const lmHead = spread(
    m.vocab,
    rowBytes,
    [...lastChips, ...unused.slice().reverse(), ...others(lastChips).reverse()],
    free,
    weightBytes,
    m.hidden * ACT_BYTES,
  );
  if (!lmHead) return null;
  for (const s of embed) holds[s.chip].push(`embedding rows ${s.start}-${s.end - 1}`);
  for (const s of lmHead) holds[s.chip].push(`lm_head rows ${s.start}-${s.end - 1} + final norm`);
  const staticBytes = new Float64Array(n);
  for (let c = 0; c < n; c++) staticBytes[c] = weightBytes[c] + kvBytes[c];
  const why =
    `${cand.groups} group(s) of ${S} chip(s), ${cand.layersPerGroup} layer(s) each: attention split by KV heads over ${A} chip(s), ` +
    `every ${m.experts > 1 ? 'expert' : 'FFN'} cut into ${S} slice(s); chosen as the fastest of the splits that fit (estimated decode step)`;
  return {
    layout: {
      chipsPerGroup: S,
      layersPerGroup: cand.layersPerGroup,
      groups,
      attentionChips: A,
      ffnSlices: S,
      embed,
      lmHead,
      sampler: lmHead[0].chip,
      why,
    },
    staticBytes,
    weightBytes,
    kvBytes,
    holds,
    layersOf,
  };
}

/** Cuts `rows` rows into slices over the chips in order, each as large as the chip's free room allows. */
function spread(
  rows: number,
  rowBytes: number,
  order: readonly number[],
  free: (chip: number) => number,
  weightBytes: Float64Array,
  extraBytes = 0,
): VocabSlice[] | null {
  const slices: VocabSlice[] = [];
  let next = 0;
  const seen = new Set<number>();
  for (const chip of order) {
    if (next >= rows) break;
    if (seen.has(chip)) continue;
    seen.add(chip);
    const room = Math.floor((free(chip) - extraBytes) / rowBytes);
    if (room <= 0) continue;
    const take = Math.min(room, rows - next);
    slices.push({ chip, start: next, end: next + take });
    weightBytes[chip] += take * rowBytes + extraBytes;
    next += take;
  }
  return next >= rows ? slices : null;
}

function placementOf(
  fabric: Fabric,
  l: LaidOut,
  peakP: Map<number, number>,
  peakD: Map<number, number>,
): ChipPlacement[] {
  const out: ChipPlacement[] = [];
  const embedChips = new Set(l.layout.embed.map((s) => s.chip));
  const lmChips = new Set(l.layout.lmHead.map((s) => s.chip));
  for (let c = 0; c < fabric.chipCount; c++) {
    // a spare standing in for a retired node has work; a failed chip is out of service, never a spare
    const role: ChipPlacement['role'] = fabric.failedChips.has(c)
      ? 'idle'
      : l.layersOf[c].length > 0
        ? 'layers'
        : embedChips.has(c)
          ? 'embed'
          : lmChips.has(c)
            ? 'lm_head'
            : fabric.isSpare(c)
              ? 'spare'
              : 'idle';
    out.push({
      chip: c,
      role,
      layers: l.layersOf[c],
      holds: l.holds[c],
      memory: {
        weightBytes: l.weightBytes[c],
        kvBytes: l.kvBytes[c],
        peakActivationBytes: { prefill: peakP.get(c) ?? 0, decode: peakD.get(c) ?? 0 },
      },
    });
  }
  return out;
}

function gb(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(1)} kB`;
}

function mib(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The shortfall, and what would fit: more chips of this kind, or a smaller dtype. */
function doesNotFit(
  t: Topology,
  m: ModelConfig,
  o: ResolvedCompileOptions,
  hw: HardwareModel,
  activeChips: number,
  totalChips: number,
): CompileError {
  const sequences = planSlots(o);
  const need = (dtype: WeightDtype) =>
    paramCounts(m).total * bytesPerParam(dtype) + kvBytesPerToken(m, KV_BYTES) * o.context * sequences;
  const needed = need(o.dtype);
  const available = hw.capacityBytes * activeChips;
  const withSpares = hw.capacityBytes * totalChips;
  const chipsNeeded = Math.ceil(needed / (hw.capacityBytes * 0.9));
  const smaller = (['int8', 'fp8'] as WeightDtype[]).filter(
    (d) => bytesPerParam(d) < bytesPerParam(o.dtype) && need(d) <= available * 0.95,
  );
  // the total fits but no split does: a chip's indivisible share binds, and more chips would not help
  const share = needed <= available ? bindingShare(hw, o, activeChips, sequences) : null;
  const binding = share !== null && share.bytes > hw.capacityBytes ? share : null;
  const hints =
    needed > available
      ? [`about ${chipsNeeded} active chips of ${mib(hw.capacityBytes)} (this topology has ${activeChips})`]
      : [binding ? `chips of at least ${mib(binding.bytes)}` : `chips with more than ${mib(hw.capacityBytes)}`];
  if (smaller.length) hints.push(`--dtype ${smaller.join(' or ')} (needs ${gb(need(smaller[0]))})`);
  const kv = kvBytesPerToken(m, KV_BYTES) * o.context * sequences;
  if (needed - kv < available * 0.95 && kv > available * 0.05)
    hints.push(`a shorter --context (the KV cache takes ${gb(kv)})`);
  if (o.microBatches > 1)
    hints.push(`fewer --micro-batches (each keeps its own KV cache; a split needs a group per micro-batch)`);
  const below = `the total (${gb(needed)}) is below the ${gb(available)} of the ${activeChips} active chips, but`;
  const why =
    binding !== null
      ? `${below} ${binding.what} needs ${mib(binding.bytes)} on one chip, and a chip holds ${mib(hw.capacityBytes)}`
      : needed <= available
        ? `${below} no split of its layers packs every chip's share (layers, embedding, lm_head and activation headroom) within ${mib(hw.capacityBytes)}`
        : `needs ${gb(needed)} (weights ${o.dtype} + KV cache for ${o.microBatches > 1 ? `${o.microBatches} micro-batches x ` : ''}${o.batch} x ${o.context} tokens) but the ${activeChips} active chips hold ${gb(available)} (${gb(withSpares)} counting spares)`;
  return new CompileError(
    'RACKEMU_ERR_DOES_NOT_FIT',
    `${m.name} does not fit on ${t.name}: ${why}. Would fit with: ${hints.join('; ')}.`,
    {
      details: {
        needed_bytes: needed,
        available_bytes: available,
        available_with_spares_bytes: withSpares,
        chips_needed: needed > available ? chipsNeeded : null,
        chip_bytes_needed: binding?.bytes ?? null,
        smaller_dtypes: smaller,
      },
    },
  );
}

/**
 * The smallest share of one layer a chip can hold in the finest split the topology allows (one layer
 * per group, as many chips per group as the groups leave room for): the attention of one KV-head group
 * with its KV cache, its FFN slice and the activation headroom the compiler keeps. When even that
 * exceeds a chip, no number of chips of this size fits the model.
 */
function bindingShare(
  hw: HardwareModel,
  o: ResolvedCompileOptions,
  activeChips: number,
  sequences: number,
): { bytes: number; what: string } {
  const m = hw.model;
  const S = Math.max(1, Math.min(Math.floor(activeChips / m.layers), m.intermediate, 1024));
  const A = largestDivisorAtMost(m.kvHeads, S);
  const share = layerBytesOnChip(hw, S, A, 0, sequences, o.context);
  const headroom = (2 * S + 8) * o.batch * m.hidden * ACT_BYTES;
  const kvHeads = m.kvHeads / A;
  const heads = kvHeads === 1 ? 'one KV head' : `${kvHeads} KV heads`;
  return {
    bytes: share.weights + share.kv + headroom,
    what:
      `a chip's smallest share of one layer (the attention of ${heads} with its KV cache for ${sequences} x ${o.context} tokens, ` +
      `${mib(share.kv)}, and an FFN slice of 1/${S}, with activation headroom; ${m.layers} layers over ${activeChips} chips allow ${S} chips per layer)`,
  };
}

/** Convenience for callers that hold the step but need the whole-run timeline: the tick each step starts at. */
export function stepStarts(plan: Plan, newTokens: number): { kind: Step['kind']; start: number }[] {
  const out: { kind: Step['kind']; start: number }[] = [];
  let t = 0;
  const prefillSteps = Math.ceil(plan.options.promptTokens / plan.options.prefillChunk);
  for (let i = 0; i < prefillSteps; i++) {
    out.push({ kind: 'prefill', start: t });
    t += plan.steps.prefill.lengthTicks;
  }
  for (let i = 1; i < newTokens; i++) {
    out.push({ kind: 'decode', start: t });
    t += plan.steps.decode.lengthTicks;
  }
  return out;
}
