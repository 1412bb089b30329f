import { compile } from '../compiler/compile.js';
import { report } from '../compiler/report.js';
import type { ModelConfig, WeightDtype } from '../model/config.js';
import { Fabric } from '../topology/fabric.js';
import type { Topology } from '../topology/types.js';
import { isRackemuError } from '../util/errors.js';

/** Settings a sweep lists as skipped: what does not fit, and more micro-batches than a model has layers. */
const SKIPPED: ReadonlySet<string> = new Set(['RACKEMU_ERR_DOES_NOT_FIT', 'RACKEMU_ERR_COMPILE_OPTION']);

/** One setting of one system on the throughput-latency frontier (`rackemu sweep --json`: `points`). */
export interface SweepPoint {
  readonly topology: string;
  readonly batch: number;
  /** Micro-batches each step pipelines through the layer groups. */
  readonly micro_batches: number;
  readonly dtype: WeightDtype;
  readonly tokens_per_s_per_user: number;
  readonly tokens_per_s_total: number;
  readonly ttft_ms: number;
  readonly tpot_ms: number;
  readonly power_w: number;
  readonly cost_per_million_tokens_usd: number;
  readonly chips_used: number;
}

/** A setting that did not compile (it does not fit, say), with the compiler's coded reason. */
export interface SweepSkip {
  readonly topology: string;
  readonly batch: number;
  readonly micro_batches: number;
  readonly dtype: WeightDtype;
  readonly code: string;
  readonly reason: string;
}

export interface SweepOptions {
  readonly batches: readonly number[];
  /** Micro-batches per step to try at each batch (a setting with more than the split's groups is skipped). */
  readonly microBatches: readonly number[];
  readonly dtypes: readonly WeightDtype[];
  readonly context: number;
  readonly promptTokens?: number;
}

export interface SweepResult {
  readonly model: string;
  readonly context: number;
  readonly points: SweepPoint[];
  readonly skipped: SweepSkip[];
  /** Wall time of the sweep on this machine (compiling every setting). */
  readonly wall_s: number;
}

/**
 * Compiles `model` onto each topology at every batch and dtype and reads each Plan's prediction, power
 * and cost (compiler/report.ts): the throughput-latency frontier of each system, from the same hardware
 * model as `compile`. A setting that does not compile is listed in `skipped` with its reason; any other
 * error ends the sweep.
 */
export function sweep(topologies: readonly Topology[], model: ModelConfig, o: SweepOptions): SweepResult {
  const t0 = performance.now();
  const points: SweepPoint[] = [];
  const skipped: SweepSkip[] = [];
  for (const topology of topologies) {
    const fabric = new Fabric(topology);
    for (const dtype of o.dtypes) {
      for (const batch of o.batches) {
        for (const microBatches of o.microBatches) {
          try {
            const plan = compile(
              topology,
              model,
              { dtype, batch, context: o.context, promptTokens: o.promptTokens, microBatches },
              fabric,
            );
            const r = report(plan, fabric);
            points.push({
              topology: topology.name,
              batch,
              micro_batches: plan.options.microBatches,
              dtype,
              tokens_per_s_per_user: r.predicted.tokens_per_s_per_user,
              tokens_per_s_total: r.predicted.tokens_per_s_total,
              ttft_ms: r.predicted.ttft_ms,
              tpot_ms: r.predicted.tpot_ms,
              power_w: r.power_w,
              cost_per_million_tokens_usd: r.cost_per_million_tokens_usd,
              chips_used: r.chips.used,
            });
          } catch (e) {
            if (!isRackemuError(e) || !SKIPPED.has(e.code)) throw e;
            skipped.push({
              topology: topology.name,
              batch,
              micro_batches: microBatches,
              dtype,
              code: e.code,
              reason: e.message,
            });
          }
        }
      }
    }
  }
  return { model: model.name, context: o.context, points, skipped, wall_s: (performance.now() - t0) / 1000 };
}
