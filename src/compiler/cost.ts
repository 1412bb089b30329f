import { bytesPerParam, type ModelConfig, type WeightDtype } from '../model/config.js';
import type { Topology } from '../topology/types.js';
import type { Kernel, KernelKind } from './plan.js';

/**
 * The hardware model: how many ticks an operation takes on one chip. An op costs the largest of
 * (weights it streams / weight streaming rate), (flops / peak rate for the dtype) and (other bytes
 * it moves / memory bandwidth), plus a fixed issue overhead. Every rate comes from the topology.
 */

/** Activations and the KV cache are kept in 16-bit floats, as on the hardware being modelled. */
export const ACT_BYTES = 2;
export const KV_BYTES = 2;

export interface OpCost {
  readonly ticks: number;
  readonly weightBytes: number;
  readonly flops: number;
}

export class HardwareModel {
  readonly ticksPerNs: number;
  /** Bytes per tick of the memory that holds weights and the KV cache. */
  readonly memoryBytesPerTick: number;
  readonly weightBytesPerTick: number;
  readonly flopsPerTick: number;
  readonly overheadTicks: number;
  readonly memoryKind: 'sram' | 'hbm';
  readonly capacityBytes: number;
  readonly weightBytesPerParam: number;

  constructor(
    readonly topology: Topology,
    readonly model: ModelConfig,
    readonly dtype: WeightDtype,
  ) {
    const chip = topology.chip;
    const hz = chip.clock_mhz * 1e6;
    this.ticksPerNs = chip.clock_mhz / 1000;
    this.memoryKind = chip.hbm_gib > 0 ? 'hbm' : 'sram';
    const tbps = this.memoryKind === 'hbm' ? chip.hbm_bandwidth_tbps : chip.sram_bandwidth_tbps;
    // what decode kernels reach, not the datasheet (docs/fidelity.md, "GPU model")
    this.memoryBytesPerTick = (tbps * 1e12 * chip.memory_efficiency) / hz;
    this.weightBytesPerTick =
      chip.weight_load_bytes_per_tick > 0
        ? Math.min(chip.weight_load_bytes_per_tick, this.memoryBytesPerTick)
        : this.memoryBytesPerTick;
    this.flopsPerTick = (chip.peak_tflops[dtype] * 1e12) / hz;
    this.overheadTicks = Math.ceil(chip.op_overhead_ns * this.ticksPerNs);
    this.capacityBytes = Math.floor(this.memoryKind === 'hbm' ? chip.hbm_gib * 2 ** 30 : chip.sram_mib * 2 ** 20);
    this.weightBytesPerParam = bytesPerParam(dtype);
  }

  nsToTicks(ns: number): number {
    return Math.ceil(ns * this.ticksPerNs);
  }

  ticksToMs(ticks: number): number {
    return ticks / this.ticksPerNs / 1e6;
  }

  /** An op's ticks: the largest of its weight, flop and memory times, plus one boundary per kernel it launches. */
  private cost(kind: KernelKind, weightBytes: number, flops: number, otherBytes: number): OpCost {
    const t = Math.max(
      weightBytes / this.weightBytesPerTick,
      flops / this.flopsPerTick,
      otherBytes / this.memoryBytesPerTick,
    );
    const boundaries = this.overheadTicks * this.topology.chip.kernels_per_op[kind];
    return { ticks: Math.max(1, Math.ceil(t)) + boundaries, weightBytes, flops };
  }

  /**
   * Cost of one op for a step of `rows` = batch x tokensPerSequence rows. Attention is costed for a
   * full `context` of cached keys: the schedule is fixed at compile time, so every step is sized for
   * the worst case it may meet. MoE ops are costed for the worst routing (the most distinct experts
   * the rows can select), so routing changes values, never the schedule.
   */
  opCost(k: Kernel, rows: number, batch: number, context: number, inputs: number): OpCost {
    const m = this.model;
    const wb = this.weightBytesPerParam;
    const h = m.hidden;
    switch (k.kind) {
      case 'embed':
        return this.cost(k.kind, 0, 0, rows * h * (wb + ACT_BYTES));
      case 'sum':
        return this.cost(k.kind, 0, rows * h * inputs, rows * h * ACT_BYTES * (inputs + 1));
      case 'attention': {
        const heads = k.headEnd - k.headStart;
        const kv = k.kvHeadEnd - k.kvHeadStart;
        const params = h * (heads + 2 * kv) * m.headDim + heads * m.headDim * h;
        const perSeq = rows / batch;
        const coreFlops = 4 * heads * m.headDim * perSeq * context * batch;
        const kvBytes = 2 * kv * m.headDim * context * batch * KV_BYTES;
        return this.cost(k.kind, params * wb, 2 * rows * params + coreFlops, kvBytes);
      }
      case 'ffn': {
        const perExpert = new Map<number, number>();
        for (const u of k.units) perExpert.set(u.expert, (perExpert.get(u.expert) ?? 0) + (u.end - u.start));
        const widths = [...perExpert.values()].sort((a, b) => b - a);
        // worst case: the widest experts this chip holds are all selected, by every row that can select them
        const distinct = Math.min(widths.length, m.expertsPerToken * rows);
        let weightParams = 0;
        for (let i = 0; i < distinct; i++) weightParams += 3 * h * widths[i];
        const pairs = rows * Math.min(m.expertsPerToken, widths.length);
        const expertFlops = 2 * pairs * 3 * h * (widths[0] ?? 0);
        const router = m.experts > 1 ? 2 * rows * h * m.experts : 0;
        const routerBytes = m.experts > 1 ? m.experts * h * wb : 0;
        return this.cost(k.kind, weightParams * wb + routerBytes, expertFlops + router, 0);
      }
      case 'lm_head': {
        const params = (k.vocabEnd - k.vocabStart) * h;
        return this.cost(k.kind, params * wb, 2 * batch * params, 0);
      }
      case 'sample':
        return this.cost(k.kind, 0, 0, inputs * batch * 8);
    }
  }
}
