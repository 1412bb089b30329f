import type { ComputeInstruction, Kernel } from '../compiler/plan.js';
import { usesMoe } from '../model/config.js';
import { weightKey, type ChipWeights } from './chip-weights.js';
import type { ChipInit } from './chip-types.js';
import type { TensorValue } from './chip-sender.js';
import {
  addInPlace,
  argmaxRows,
  attend,
  combineArgmax,
  embedLookup,
  KvCache,
  lmHeadSlice,
  matmulXWt,
  projectQkv,
  rmsNorm,
  routeTopK,
  swigluSlice,
  type ArgmaxPartial,
} from './kernels.js';
import { microBatchPart, type StepInstance } from './run-spec.js';

type FfnKernel = Extract<Kernel, { kind: 'ffn' }>;
type AttentionKernel = Extract<Kernel, { kind: 'attention' }>;
type LmHeadKernel = Extract<Kernel, { kind: 'lm_head' }>;

/**
 * A chip's numeric compute: the kernels its Program names, over the weight slices and KV cache in its
 * SRAM. Inputs are the chip's own buffers or views of received frames, never mutated.
 */
export class ChipKernels {
  /**
   * lm_head chips: the logits slice of the most recent step, one row per batch slot of every
   * micro-batch (host readback for the final logits).
   */
  lastLogits: { start: number; logits: Float32Array } | null = null;
  /** Per layer, one KV cache per batch slot. */
  private readonly caches = new Map<number, KvCache[]>();
  private readonly moe: boolean;

  constructor(
    private readonly init: ChipInit,
    private readonly weights: ChipWeights,
  ) {
    this.moe = usesMoe(init.model);
    for (const ins of init.program.decode.instructions) {
      if (ins.kind === 'compute' && ins.kernel.kind === 'attention') {
        const k = ins.kernel;
        const slotCache = () =>
          new KvCache(init.context, k.kvHeadEnd - k.kvHeadStart, init.model.headDim, k.kvHeadStart);
        this.caches.set(k.layer, Array.from({ length: init.batch }, slotCache));
      }
    }
  }

  /** The output of one compute instruction of `step`, its inputs taken from `values` (tensor id -> value). */
  compute(
    ins: ComputeInstruction,
    step: StepInstance,
    values: ReadonlyMap<number, TensorValue>,
  ): Float32Array | Int32Array {
    const m = this.init.model;
    const w = this.weights;
    const H = m.hidden;
    const input = (i: number) => values.get(ins.inputs[i]) as Float32Array;
    const k: Kernel = ins.kernel;
    // an op computes the rows of its own micro-batch's slots
    const view = this.microBatchView(step, ins.microBatch);
    const rows = view.step.positions.length;
    switch (k.kind) {
      case 'embed':
        return embedLookup(values.get(ins.inputs[0]) as Int32Array, w[weightKey.embed()], k.vocabStart, k.vocabEnd, H);
      case 'sum': {
        const out = Float32Array.from(input(0));
        for (let i = 1; i < ins.inputs.length; i++) addInPlace(out, input(i));
        return out;
      }
      case 'attention':
        return this.attention(k, input(0), view.step, view.firstSlot);
      case 'ffn':
        return this.ffn(k, input(0), rows);
      case 'lm_head':
        return this.lmHead(k, input(0), view.step, view.firstSlot);
      case 'sample': {
        const parts = ins.inputs.map((t) => unpackArgmax(values.get(t) as Int32Array));
        return Int32Array.from(combineArgmax(...parts).indices);
      }
    }
  }

  /** The part of `step` micro-batch `m` carries (the whole step with one micro-batch), and its first slot. */
  private microBatchView(step: StepInstance, m: number): { step: StepInstance; firstSlot: number } {
    const M = this.init.microBatches;
    if (M === 1) return { step, firstSlot: 0 };
    return {
      firstSlot: m * (step.slotRows.length / M),
      step: {
        index: step.index,
        kind: step.kind,
        base: step.base,
        positions: microBatchPart(step.positions, m, M),
        slotRows: microBatchPart(step.slotRows, m, M),
        inputIds: step.inputIds === null ? null : microBatchPart(step.inputIds, m, M),
      },
    };
  }

  /**
   * RMSNorm, q/k/v of the chip's heads (projection, bias, q/k norm, RoPE: kernels/qkv.ts), then per
   * batch slot: its valid rows' k and v into the slot's KV cache and attention of its rows over it.
   * Rows of idle slots stay zero.
   */
  private attention(k: AttentionKernel, x: Float32Array, step: StepInstance, firstSlot: number): Float32Array {
    const m = this.init.model;
    const w = this.weights;
    const H = m.hidden;
    const hd = m.headDim;
    const rows = step.positions.length;
    const heads = k.headEnd - k.headStart;
    const kvHeads = k.kvHeadEnd - k.kvHeadStart;
    const l = k.layer;
    const xn = rmsNorm(x, rows, H, w[weightKey.ln1(l)], m.rmsNormEps);
    const qkvWeights = {
      q: w[weightKey.q(l)],
      k: w[weightKey.k(l)],
      v: w[weightKey.v(l)],
      qBias: w[weightKey.qBias(l)],
      kBias: w[weightKey.kBias(l)],
      vBias: w[weightKey.vBias(l)],
      qNorm: w[weightKey.qNorm(l)],
      kNorm: w[weightKey.kNorm(l)],
    };
    const { q, k: keys, v: vals } = projectQkv(m, xn, rows, heads, kvHeads, qkvWeights, step.positions);
    const slots = step.slotRows.length;
    const caches = this.caches.get(k.layer)!.slice(firstSlot, firstSlot + slots);
    const T = rows / slots;
    const qRow = heads * hd;
    const kvRow = kvHeads * hd;
    const a = new Float32Array(rows * qRow);
    for (let b = 0; b < caches.length; b++) {
      const valid = step.slotRows[b];
      if (valid === 0) continue;
      const at = b * T;
      const positions = step.positions.subarray(at, at + T);
      // a prompt's first chunk starts the slot's sequence anew
      if (step.kind === 'prefill' && positions[0] === 0) caches[b].truncate(0);
      caches[b].append(
        keys.subarray(at * kvRow, (at + valid) * kvRow),
        vals.subarray(at * kvRow, (at + valid) * kvRow),
        positions.subarray(0, valid),
      );
      const qs = q.subarray(at * qRow, (at + T) * qRow);
      attend(qs, caches[b], positions, m.heads / m.kvHeads, m.slidingWindow, {
        qHeadOffset: k.headStart,
        out: a.subarray(at * qRow, (at + T) * qRow),
      });
    }
    return matmulXWt(a, rows, qRow, w[weightKey.o(k.layer)], H);
  }

  /** Final RMSNorm and the chip's logits slice for the last valid row of each running slot; its argmax per slot. */
  private lmHead(k: LmHeadKernel, x: Float32Array, step: StepInstance, firstSlot: number): Int32Array {
    const m = this.init.model;
    const w = this.weights;
    const H = m.hidden;
    const slots = step.slotRows.length;
    const T = step.positions.length / slots;
    const last = new Float32Array(slots * H);
    for (let b = 0; b < slots; b++) {
      const valid = step.slotRows[b];
      if (valid > 0) last.set(x.subarray((b * T + valid - 1) * H, (b * T + valid) * H), b * H);
    }
    const xn = rmsNorm(last, slots, H, w[weightKey.finalNorm()], m.rmsNormEps);
    const logits = lmHeadSlice(xn, slots, H, w[weightKey.lmHead()], k.vocabStart, k.vocabEnd);
    // every micro-batch writes its own slots' rows of the step's logits
    const width = k.vocabEnd - k.vocabStart;
    if (this.lastLogits === null || this.lastLogits.logits.length !== this.init.batch * width)
      this.lastLogits = { start: k.vocabStart, logits: new Float32Array(this.init.batch * width) };
    this.lastLogits.logits.set(logits, firstSlot * width);
    return packArgmax(argmaxRows(logits, slots, width, k.vocabStart));
  }

  private ffn(k: FfnKernel, h: Float32Array, rows: number): Float32Array {
    const m = this.init.model;
    const w = this.weights;
    const H = m.hidden;
    const xn = rmsNorm(h, rows, H, w[weightKey.ln2(k.layer)], m.rmsNormEps);
    const out = new Float32Array(rows * H);
    const expert = (e: number) =>
      [w[weightKey.w1(k.layer, e)], w[weightKey.w3(k.layer, e)], w[weightKey.w2(k.layer, e)]] as const;
    if (!this.moe) {
      for (const u of k.units) swigluSlice(xn, rows, H, ...expert(u.expert), u.end - u.start, out, true);
      return out;
    }
    // The router is replicated on every chip and computed over the full hidden dimension, so every
    // chip of the group makes the same (bit-identical) routing decision as the reference.
    const logits = matmulXWt(xn, rows, H, w[weightKey.router(k.layer)], m.experts);
    const route = routeTopK(logits, rows, m.experts, m.expertsPerToken, m.normTopK);
    for (const u of k.units) {
      const picked: number[] = [];
      const gate: number[] = [];
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < m.expertsPerToken; j++) {
          if (route.experts[r * m.expertsPerToken + j] === u.expert) {
            picked.push(r);
            gate.push(route.weights[r * m.expertsPerToken + j]);
          }
        }
      }
      if (picked.length === 0) continue; // not routed here this step: the slot in the schedule stays, the work is zero
      const xs = new Float32Array(picked.length * H);
      picked.forEach((r, i) => xs.set(xn.subarray(r * H, (r + 1) * H), i * H));
      const y = swigluSlice(xs, picked.length, H, ...expert(u.expert), u.end - u.start);
      picked.forEach((r, i) => {
        const g = gate[i];
        for (let c = 0; c < H; c++) out[r * H + c] = Math.fround(out[r * H + c] + g * y[i * H + c]);
      });
    }
    return out;
  }
}

/** (value, index) per row as two int32 words: the float's bits, then the index. */
export function packArgmax(p: ArgmaxPartial): Int32Array {
  const out = new Int32Array(p.values.length * 2);
  const f = new Float32Array(out.buffer);
  for (let r = 0; r < p.values.length; r++) {
    f[2 * r] = p.values[r];
    out[2 * r + 1] = p.indices[r];
  }
  return out;
}

export function unpackArgmax(a: Int32Array): ArgmaxPartial {
  const rows = a.length / 2;
  const f = new Float32Array(a.buffer, a.byteOffset, a.length);
  const values = new Float32Array(rows);
  const indices = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    values[r] = f[2 * r];
    indices[r] = a[2 * r + 1];
  }
  return { values, indices };
}
