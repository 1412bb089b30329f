import type { Fabric, Route } from '../topology/fabric.js';
import { ACT_BYTES, type HardwareModel } from './cost.js';
import { LinkCalendar } from './links.js';
import { layerKernels, type GroupShape } from './partition.js';
import type { Kernel, Layout, Op, Step, StepKind, Tensor, Transfer } from './plan.js';

/**
 * List scheduling of one step's dataflow onto chips and links. Ops are created in dataflow order;
 * each starts when its inputs have arrived and its chip's compute unit is free; each transfer
 * departs at the earliest tick its whole route is free (LinkCalendar). Nothing here looks at values.
 *
 * Dataflow of a step (rows = batch x tokens per sequence):
 *   tok@sampler -> embed slices -> sum@lead(0) = x0
 *   per layer l on group g: x_l -> attention chips -> partial o -> sum (tree) @lead = x_l + o = h_l
 *                            h_l -> the group's FFN chips (slices) -> partial y
 *                                -> sum (tree) @lead = h_l + y = x_{l+1}
 *   x_L -> lm_head slices -> (max, index) partials -> sample@sampler = next tok
 */
export class StepBuilder {
  private readonly tensors: Tensor[] = [];
  private readonly ops: Op[] = [];
  private readonly transfers: Transfer[] = [];
  private readonly ready: number[] = [];
  /** (tensor, chip) -> arrival tick of that tensor at that chip. */
  private readonly arrivals = new Map<string, number>();
  private readonly chipFree = new Map<number, number>();
  private readonly calendar: LinkCalendar;
  private readonly routes = new Map<string, Route>();
  /** The micro-batch whose ops build() is creating. */
  private microBatch = 0;

  constructor(
    private readonly hw: HardwareModel,
    private readonly fabric: Fabric,
    private readonly kind: StepKind,
    private readonly batch: number,
    private readonly tokensPerSequence: number,
    private readonly context: number,
    private readonly microBatches = 1,
  ) {
    this.calendar = new LinkCalendar(fabric);
  }

  private get rows(): number {
    return this.batch * this.tokensPerSequence;
  }

  private tensor(
    name: string,
    chip: number,
    rows: number,
    cols: number,
    dtype: Tensor['dtype'],
    readyAt: number,
  ): number {
    const elem = dtype === 'act' ? ACT_BYTES : dtype === 'i32' ? 4 : 8;
    const id = this.tensors.length;
    this.tensors.push({ id, name, chip, rows, cols, dtype, bytes: rows * cols * elem });
    this.ready.push(readyAt);
    return id;
  }

  private route(src: number, dst: number): Route {
    const key = `${src}>${dst}`;
    let r = this.routes.get(key);
    if (!r) {
      r = this.fabric.route(src, dst);
      this.routes.set(key, r);
    }
    return r;
  }

  /** Tick at which tensor `t` is available on `chip`, scheduling a transfer the first time it is needed there. */
  private availableAt(t: number, chip: number): number {
    const tensor = this.tensors[t];
    if (tensor.chip === chip) return this.ready[t];
    const key = `${t}@${chip}`;
    const known = this.arrivals.get(key);
    if (known !== undefined) return known;
    const r = this.route(tensor.chip, chip);
    const busyTicks = Math.max(1, Math.ceil(tensor.bytes / r.bytesPerTick));
    const depart = this.calendar.reserve(r.links, this.ready[t], busyTicks);
    const arrive = depart + r.latencyTicks + busyTicks;
    this.transfers.push({
      id: this.transfers.length,
      tensor: t,
      src: tensor.chip,
      dst: chip,
      links: r.links,
      depart,
      arrive,
      bytes: tensor.bytes,
      busyTicks,
    });
    this.arrivals.set(key, arrive);
    return arrive;
  }

  private op(
    chip: number,
    kernel: Kernel,
    inputs: number[],
    out: { name: string; rows: number; cols: number; dtype: Tensor['dtype'] },
  ): number {
    let start = this.chipFree.get(chip) ?? 0;
    for (const t of inputs) start = Math.max(start, this.availableAt(t, chip));
    const cost = this.hw.opCost(kernel, this.rows, this.batch, this.context, inputs.length);
    const end = start + cost.ticks;
    this.chipFree.set(chip, end);
    const output = this.tensor(out.name, chip, out.rows, out.cols, out.dtype, end);
    this.ops.push({
      id: this.ops.length,
      chip,
      kernel,
      microBatch: this.microBatch,
      inputs,
      output,
      start,
      end,
      weightBytes: cost.weightBytes,
      flops: cost.flops,
    });
    return output;
  }

  /**
   * Sums partials onto `lead` through a two-level tree: the partials of each other node are first
   * summed on one chip of that node (in-node links are direct), then the lead sums its residual, its
   * own node's partials and one tensor per other node. This bounds the lead's fan-in (ingress
   * serialisation and receive buffers) by chips-per-node + nodes rather than by the group size.
   */
  private reduce(
    lead: number,
    residual: number | null,
    parts: number[],
    layer: number,
    what: 'embed' | 'attention' | 'ffn',
    name: string,
  ): number {
    const R = this.rows;
    const byNode = new Map<number, number[]>();
    for (const t of parts) {
      const node = this.fabric.globalNodeOf(this.tensors[t].chip);
      const list = byNode.get(node) ?? [];
      list.push(t);
      byNode.set(node, list);
    }
    const leadNode = this.fabric.globalNodeOf(lead);
    const inputs: number[] = residual === null ? [] : [residual];
    for (const [node, list] of byNode) {
      if (node === leadNode || list.length === 1) {
        inputs.push(...list);
        continue;
      }
      const agg = this.tensors[list[0]].chip;
      inputs.push(
        this.op(agg, { kind: 'sum', layer, what }, list, {
          name: `${name}.${this.fabric.chipId(agg)}`,
          rows: R,
          cols: this.hw.model.hidden,
          dtype: 'act',
        }),
      );
    }
    return this.op(lead, { kind: 'sum', layer, what }, inputs, {
      name,
      rows: R,
      cols: this.hw.model.hidden,
      dtype: 'act',
    });
  }

  /**
   * Schedules the step. With several micro-batches, ops are created stage by stage (the embedding, each
   * layer group, the lm_head and sampler), every micro-batch within a stage in turn: a group's chips
   * take micro-batch m as soon as they are done with m - 1 and its input has arrived, so up to one
   * micro-batch per group is in flight. One micro-batch gives exactly the single-batch schedule.
   */
  build(layout: Layout, startTick: number): Step {
    const m = this.hw.model;
    const R = this.rows;
    const M = this.microBatches;
    const act = (name: string) => ({ name, rows: R, cols: m.hidden, dtype: 'act' as const });
    const mb = (name: string, b: number) => (b === 0 ? name : `${name}.mb${b}`);
    const shape: GroupShape = { chips: layout.chipsPerGroup, attention: layout.attentionChips, ffn: layout.ffnSlices };
    const x: number[] = [];
    for (let b = 0; b < M; b++) {
      this.microBatch = b;
      const tok = this.tensor(mb('tok', b), layout.sampler, R, 1, 'i32', startTick);
      const lead0 = layout.groups[0].lead;
      const embedParts = layout.embed.map((s) =>
        this.op(
          s.chip,
          { kind: 'embed', vocabStart: s.start, vocabEnd: s.end },
          [tok],
          act(mb(`e.${this.fabric.chipId(s.chip)}`, b)),
        ),
      );
      x.push(this.reduce(lead0, null, embedParts, 0, 'embed', mb('x.L0', b)));
    }

    for (const g of layout.groups) {
      for (let b = 0; b < M; b++) {
        this.microBatch = b;
        for (const layer of g.layers) {
          const attnParts: number[] = [];
          const ffnParts: number[] = [];
          for (let i = 0; i < shape.attention; i++) {
            const k = layerKernels(m, layer, shape, i);
            const name = mb(`o.L${layer}.${this.fabric.chipId(g.chips[i])}`, b);
            attnParts.push(this.op(g.chips[i], k.attention!, [x[b]], act(name)));
          }
          const h = this.reduce(g.lead, x[b], attnParts, layer, 'attention', mb(`h.L${layer}`, b));
          for (let i = shape.chips - shape.ffn; i < g.chips.length; i++) {
            const k = layerKernels(m, layer, shape, i);
            if (!k.ffn) continue;
            const name = mb(`y.L${layer}.${this.fabric.chipId(g.chips[i])}`, b);
            ffnParts.push(this.op(g.chips[i], k.ffn, [h], act(name)));
          }
          x[b] = this.reduce(g.lead, h, ffnParts, layer, 'ffn', mb(`x.L${layer + 1}`, b));
        }
      }
    }

    let next = -1;
    for (let b = 0; b < M; b++) {
      this.microBatch = b;
      const lmParts = layout.lmHead.map((s) =>
        this.op(s.chip, { kind: 'lm_head', vocabStart: s.start, vocabEnd: s.end }, [x[b]], {
          name: mb(`m.${this.fabric.chipId(s.chip)}`, b),
          rows: this.batch,
          cols: 1,
          dtype: 'argmax',
        }),
      );
      next = this.op(layout.sampler, { kind: 'sample' }, lmParts, {
        name: mb('next', b),
        rows: this.batch,
        cols: 1,
        dtype: 'i32',
      });
    }
    return {
      kind: this.kind,
      tokensPerSequence: this.tokensPerSequence,
      rows: R,
      microBatches: M,
      // the last micro-batch's ids are ready last (the sampler takes them in order)
      lengthTicks: this.ready[next],
      tensors: this.tensors,
      ops: this.ops,
      transfers: this.transfers,
    };
  }
}

/**
 * Peak live activation bytes per chip over a step. A tensor occupies memory on its producing chip
 * from its op's start until its last local use or last departure; on a receiving chip from the
 * transfer's departure (the buffer is reserved before the first flit lands) until its last local use.
 */
export function peakActivationBytes(step: Step): Map<number, number> {
  const events = new Map<number, { t: number; d: number }[]>();
  const add = (chip: number, t: number, d: number) => {
    let list = events.get(chip);
    if (!list) events.set(chip, (list = []));
    list.push({ t, d });
  };
  const lastUse = new Map<string, number>();
  const touch = (tensor: number, chip: number, t: number) => {
    const key = `${tensor}@${chip}`;
    lastUse.set(key, Math.max(lastUse.get(key) ?? t, t));
  };
  const firstUse = new Map<string, number>();
  for (const op of step.ops) {
    firstUse.set(`${op.output}@${op.chip}`, op.start);
    touch(op.output, op.chip, op.end);
    for (const t of op.inputs) touch(t, op.chip, op.end);
  }
  for (const tr of step.transfers) {
    touch(tr.tensor, tr.src, tr.depart + tr.busyTicks);
    const key = `${tr.tensor}@${tr.dst}`;
    firstUse.set(key, Math.min(firstUse.get(key) ?? tr.depart, tr.depart));
  }
  // the step's input and output token ids (one of each per micro-batch) stay for the whole step
  for (const t of step.tensors) {
    if (/^tok(\.mb\d+)?$/.test(t.name)) firstUse.set(`${t.id}@${t.chip}`, 0);
    if (/^next(\.mb\d+)?$/.test(t.name)) touch(t.id, t.chip, step.lengthTicks);
  }
  for (const [key, start] of firstUse) {
    const [tensor, chip] = key.split('@').map(Number);
    const end = lastUse.get(key) ?? start;
    const bytes = step.tensors[tensor].bytes;
    add(chip, start, bytes);
    add(chip, end + 1, -bytes);
  }
  const peaks = new Map<number, number>();
  for (const [chip, list] of events) {
    list.sort((a, b) => a.t - b.t || a.d - b.d);
    let cur = 0;
    let peak = 0;
    for (const e of list) {
      cur += e.d;
      peak = Math.max(peak, cur);
    }
    peaks.set(chip, peak);
  }
  return peaks;
}
