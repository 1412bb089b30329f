import type { ModelConfig } from '../model/config.js';
import { Fabric } from '../topology/fabric.js';
import type { Topology } from '../topology/types.js';
import { ACT_BYTES, HardwareModel } from './cost.js';
import { doesNotFit } from './does-not-fit.js';
import { resolveOptions, type CompileOptions } from './options.js';
import {
  activationReserve,
  attentionPart,
  candidates,
  ffnSliceOf,
  layerBytesOnChip,
  type Candidate,
  type GroupShape,
} from './partition.js';
import {
  planSlots,
  type ChipPlacement,
  type Layout,
  type LayerGroup,
  type Plan,
  type LayoutSearch,
  type ResolvedCompileOptions,
  type Step,
  type VocabSlice,
} from './plan.js';
import { buildPrograms } from './programs.js';
import { peakActivationBytes, StepBuilder } from './schedule.js';

/**
 * The compiler: topology + model -> Plan. Pure: reads nothing, writes nothing.
 *   1. rank splits of the model over chips by an analytic estimate (partition.ts);
 *   2. lay splits onto active chips, spread embedding and lm_head into the room left; the full search
 *      schedules a shortlist's decode steps exactly and takes them fastest first;
 *   3. schedule a prefill step and a decode step tick by tick (schedule.ts);
 *   4. check every chip's memory at its peak; shrink the prefill chunk or move on to the next split if not.
 */

/** Prefill rows per sequence that the per-chip activation headroom is first sized for. */
const PREFILL_RESERVE_ROWS = 64;
/** Splits, best by the estimate, whose decode step is always scheduled exactly to pick the fastest. */
const SHORTLIST = 8;

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
  // the classic search falls back to the full one: a model never fails to fit for want of a finer split
  const searches: LayoutSearch[] = opts.layoutSearch === 'classic' ? ['classic', 'full'] : ['full'];
  for (const search of searches) {
    for (const rows of reserveRows) {
      // the full search sizes the headroom by the lead's fan-in under the two-level reduction tree
      const fanIn = (S: number) =>
        search === 'classic' ? S : Math.min(S, fabric.chipsPerNode + Math.ceil(S / fabric.chipsPerNode));
      const reserve = (S: number) => activationReserve(fanIn(S), rows, model);
      const at: Placing = { hw, fabric, active, opts, reserve, search };
      const ranked = candidates(
        hw,
        fabric,
        active.length,
        opts.batch,
        opts.context,
        reserve(1),
        opts.microBatches,
        search,
      );
      const shortlist = search === 'full' ? shortlistOf(ranked, fabric) : [];
      for (const { layout, decode } of timed(at, shortlist)) {
        const plan = scheduleFitting(hw, fabric, layout, opts, decode);
        if (plan) return plan;
      }
      // the shortlisted ones did not fit: the rest of the best by the estimate
      const rest = ranked.slice(0, 64).filter((c) => !shortlist.includes(c));
      for (const layout of layOutAll(at, rest)) {
        const plan = scheduleFitting(hw, fabric, layout, opts);
        if (plan) return plan;
      }
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

/** What laying candidates out onto chips needs: the machine, the chips in order, the options, the search. */
interface Placing {
  readonly hw: HardwareModel;
  readonly fabric: Fabric;
  readonly active: readonly number[];
  readonly opts: ResolvedCompileOptions;
  /** Per-chip activation headroom for a group of that many chips. */
  readonly reserve: (chipsPerGroup: number) => number;
  readonly search: LayoutSearch;
}

/** The candidates that lay out onto the chips, in rank order (lazily: most are never needed). */
function* layOutAll(at: Placing, ranked: readonly Candidate[]): Generator<LaidOut> {
  for (const cand of ranked) {
    const layout = layOut(at.hw, at.fabric, cand, at.active, at.reserve(cand.shape.chips), at.opts, at.search);
    if (layout) yield layout;
  }
}

/** The estimate only ranks: the shortlisted splits laid out, with their exact decode steps, fastest first. */
function timed(at: Placing, shortlist: readonly Candidate[]): { layout: LaidOut; decode: Step }[] {
  return [...layOutAll(at, shortlist)]
    .map((layout) => ({ layout, decode: decodeStep(at.hw, at.fabric, layout, at.opts) }))
    .sort((a, b) => a.decode.lengthTicks - b.decode.lengthTicks);
}

/**
 * The best candidates by the estimate, and the best one for each number of groups and of racks a
 * group spans: the estimate knows least about how traffic spreads over nodes and racks.
 */
function shortlistOf(ranked: readonly Candidate[], fabric: Fabric): Candidate[] {
  const out = ranked.slice(0, SHORTLIST);
  const rackChips = (fabric.nodesPerRack - fabric.topology.spare_nodes_per_rack) * fabric.chipsPerNode;
  const key = (c: Candidate) => `${c.groups}:${Math.ceil(c.shape.chips / rackChips)}`;
  const seen = new Set(out.map(key));
  for (const c of ranked) {
    if (out.length >= 3 * SHORTLIST) break;
    if (seen.has(key(c))) continue;
    seen.add(key(c));
    out.push(c);
  }
  return out;
}

function decodeStep(hw: HardwareModel, fabric: Fabric, layout: LaidOut, opts: ResolvedCompileOptions): Step {
  const start = hw.topology.sync.step_overhead_ticks;
  return new StepBuilder(hw, fabric, 'decode', opts.batch, 1, opts.context, opts.microBatches).build(
    layout.layout,
    start,
  );
}

/**
 * Schedules both steps, halving the prefill chunk until every chip's peak fits; null if decode itself
 * cannot fit. The decode step does not depend on the prefill chunk: it is built once.
 */
function scheduleFitting(
  hw: HardwareModel,
  fabric: Fabric,
  layout: LaidOut,
  initial: ResolvedCompileOptions,
  decode = decodeStep(hw, fabric, layout, initial),
): Plan | null {
  const topology = hw.topology;
  let opts = initial;
  for (;;) {
    const start = topology.sync.step_overhead_ticks;
    const M = opts.microBatches;
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
  search: LayoutSearch,
): LaidOut | null {
  const m = hw.model;
  const n = fabric.chipCount;
  const weightBytes = new Float64Array(n);
  const kvBytes = new Float64Array(n);
  const holds: string[][] = Array.from({ length: n }, () => []);
  const layersOf: number[][] = Array.from({ length: n }, () => []);
  const shape = cand.shape;
  const S = shape.chips;
  const groups: LayerGroup[] = [];
  for (let g = 0; g < cand.groups; g++) {
    const chips = active.slice(g * S, (g + 1) * S);
    const layers: number[] = [];
    for (let l = g * cand.layersPerGroup; l < Math.min(m.layers, (g + 1) * cand.layersPerGroup); l++) layers.push(l);
    chips.forEach((chip, i) => {
      // every micro-batch keeps its own KV cache
      const b = layerBytesOnChip(hw, shape, i, planSlots(opts), opts.context);
      weightBytes[chip] += b.weights * layers.length;
      kvBytes[chip] += b.kv * layers.length;
      layersOf[chip].push(...layers);
      const span = layers.length === 1 ? `L${layers[0]}` : `L${layers[0]}-${layers[layers.length - 1]}`;
      holds[chip].push(`${span} ${sharesOf(m, shape, i).join(' + ')}`);
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
    `${cand.groups} group(s) of ${S} chip(s), ${cand.layersPerGroup} layer(s) each: ${attentionSplitText(m, shape)}, ` +
    `every ${m.experts > 1 ? 'expert' : 'FFN'} cut into ${shape.ffn} slice(s)` +
    `${shape.ffn < S ? ` on the other ${shape.ffn} chip(s)` : ''}; ` +
    (search === 'classic'
      ? 'chosen as the fastest of the classic splits that fit (estimated decode step)'
      : `chosen as the fastest decode step of the splits that fit (a shortlist by estimate, timed exactly)${opts.layoutSearch === 'classic' ? ', since no classic split fits' : ''}`);
  return {
    layout: {
      chipsPerGroup: S,
      layersPerGroup: cand.layersPerGroup,
      groups,
      attentionChips: shape.attention,
      ffnSlices: shape.ffn,
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

/** What chip i of a group holds of each of its layers, for the placement's `holds`. */
function sharesOf(m: ModelConfig, shape: GroupShape, i: number): string[] {
  const out: string[] = [];
  if (i < shape.attention) {
    const p = attentionPart(m, shape.attention, i);
    const kv =
      p.kvHeadEnd - p.kvHeadStart === 1 ? `kv-head ${p.kvHeadStart}` : `kv-heads ${p.kvHeadStart}-${p.kvHeadEnd - 1}`;
    const q = p.headEnd - p.headStart === 1 ? `q-head ${p.headStart}` : `q-heads ${p.headStart}-${p.headEnd - 1}`;
    out.push(`attention ${q}, ${kv}`);
  }
  const j = ffnSliceOf(shape, i);
  if (j >= 0) out.push(`FFN slice ${j}/${shape.ffn}`);
  return out;
}

function attentionSplitText(m: ModelConfig, shape: GroupShape): string {
  const A = shape.attention;
  const how =
    m.kvHeads % A === 0
      ? `split by KV heads over ${A} chip(s)`
      : `split by query-head groups over ${A} chip(s) (each KV head copied to ${A / m.kvHeads} of them)`;
  return `attention ${how}${shape.ffn < shape.chips ? ' of its own' : ''}`;
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
