import type { ModelConfig } from '../model/config.js';
import type { Topology } from '../topology/types.js';
import { compile } from './compile.js';
import type { CompileOptions } from './options.js';
import { predict } from './report.js';

/**
 * Calibration in the open: the value of chip.weight_load_bytes_per_tick at which the compiled
 * Plan's predicted tokens/s per user equals a published figure, found by bisection (the prediction
 * rises monotonically with the rate). Used by bench/calibrate.ts to produce the value written in
 * the topology file, and by the tests to check that the file still holds what this procedure gives.
 */
export interface Calibration {
  readonly value: number;
  readonly predictedTokensPerS: number;
  readonly iterations: number;
}

export function calibrateWeightLoad(
  topology: Topology,
  model: ModelConfig,
  targetTokensPerSPerUser: number,
  options: CompileOptions = {},
  relTolerance = 1e-4,
): Calibration {
  const hz = topology.chip.clock_mhz * 1e6;
  const memoryBw = topology.chip.hbm_gib > 0 ? topology.chip.hbm_bandwidth_tbps : topology.chip.sram_bandwidth_tbps;
  const rateAt = (v: number) =>
    predict(compile({ ...topology, chip: { ...topology.chip, weight_load_bytes_per_tick: v } }, model, options))
      .tokens_per_s_per_user;
  let lo = 1;
  let hi = (memoryBw * 1e12) / hz;
  let iterations = 0;
  while ((hi - lo) / hi > relTolerance && iterations < 60) {
    const mid = (lo + hi) / 2;
    if (rateAt(mid) < targetTokensPerSPerUser) lo = mid;
    else hi = mid;
    iterations++;
  }
  const value = Math.round(hi * 100) / 100;
  return { value, predictedTokensPerS: rateAt(value), iterations };
}
