import type { Plan } from '../compiler/plan.js';
import { DEFAULT_LOOKAHEAD_STEPS, frameTemplate, type Fidelity } from '../runtime/index.js';
import type { Fabric } from '../topology/fabric.js';
import type { PairTraffic } from '../transport/index.js';

/**
 * What the schedule sends on each chip pair per step, for the embedded transport to size its rings:
 * each frame's largest encoded size. Numeric: float32 payloads (4 bytes an element) plus a header
 * allowance, sent one by one. Timing: exact sizes (templates) with integers at their widest, sent as
 * a bundle per look-ahead window of the default look-ahead (rings are sized when the deployment
 * starts, before a run can ask for another look-ahead).
 */
export function scheduleTraffic(plan: Plan, fabric: Fabric, fidelity: Fidelity): PairTraffic[] {
  const lookahead = fidelity === 'timing' ? DEFAULT_LOOKAHEAD_STEPS : undefined;
  const traffic: PairTraffic[] = [];
  for (const step of [plan.steps.prefill, plan.steps.decode]) {
    const perPair = new Map<string, { src: string; dst: string; frameBytes: number[] }>();
    for (const tr of step.transfers) {
      const t = step.tensors[tr.tensor];
      const src = fabric.chipId(tr.src);
      const dst = fabric.chipId(tr.dst);
      const key = `${src}>${dst}`;
      let pair = perPair.get(key);
      if (pair === undefined) perPair.set(key, (pair = { src, dst, frameBytes: [] }));
      pair.frameBytes.push(
        fidelity === 'numeric'
          ? t.rows * (t.dtype === 'argmax' ? 2 : t.cols) * 4 + FRAME_HEADER_ALLOWANCE
          : frameTemplate(t, src, dst, 'none').sizeBound(WIDEST_INT, WIDEST_INT, WIDEST_INT),
      );
    }
    for (const pair of perPair.values()) traffic.push({ ...pair, lookahead });
  }
  return traffic;
}

/** An integer a frame header may carry at the widest msgpack width (9 bytes). */
const WIDEST_INT = 2 ** 40;

/** Upper bound on an encoded frame header (ids, tensor name, shape, padding). */
const FRAME_HEADER_ALLOWANCE = 256;
