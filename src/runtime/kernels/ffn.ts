/**
 * Feed-forward kernels: the MoE router (Mixtral, Qwen3-MoE) and the SwiGLU expert (or dense MLP) on a slice of its
 * intermediate dimension. Numerics follow linalg.ts.
 */
import { matmulXWt, siluScalar } from './linalg.js';

export interface Routing {
  /** [rows, k] selected expert ids, in selection order (highest weight first). */
  experts: Int32Array;
  /** [rows, k] weights: renormalised (sum to 1 per row up to float32 rounding), or the probabilities as they are. */
  weights: Float32Array;
}

/**
 * HF Mixtral routing on router logits [rows, nExperts]: probabilities = softmax over all experts
 * (double, max-subtracted, rounded to float32 like HF's float32 softmax); the k largest
 * probabilities are selected, ties broken by the lower expert index; with `normalize` (Mixtral, and
 * Qwen3-MoE's norm_topk_prob) the k weights are divided by their sum (double) and rounded to
 * float32, else they are the float32 probabilities themselves (Qwen3-MoE without norm_topk_prob).
 * Routing must be computed from bit-identical logits everywhere it is needed: a near-tie can flip.
 */
export function routeTopK(
  logits: Float32Array,
  rows: number,
  nExperts: number,
  k: number,
  normalize: boolean,
): Routing {
  if (k < 1 || k > nExperts) throw new RangeError(`routeTopK: k=${k} not in [1, ${nExperts}]`);
  if (logits.length < rows * nExperts) throw new RangeError('routeTopK: logits too short');
  const experts = new Int32Array(rows * k);
  const weights = new Float32Array(rows * k);
  const prob = new Float32Array(nExperts);
  const e = new Float64Array(nExperts);
  const taken = new Uint8Array(nExperts);
  for (let r = 0; r < rows; r++) {
    const o = r * nExperts;
    let m = -Infinity;
    for (let x = 0; x < nExperts; x++) if (logits[o + x] > m) m = logits[o + x];
    let s = 0;
    for (let x = 0; x < nExperts; x++) {
      e[x] = Math.exp(logits[o + x] - m);
      s += e[x];
    }
    for (let x = 0; x < nExperts; x++) prob[x] = e[x] / s;
    taken.fill(0);
    let tot = 0;
    for (let t = 0; t < k; t++) {
      let best = -1;
      for (let x = 0; x < nExperts; x++) {
        if (taken[x]) continue;
        // strict '>' keeps the lower index on ties; a NaN never wins unless nothing else is left
        if (best < 0 || prob[x] > prob[best]) best = x;
      }
      taken[best] = 1;
      experts[r * k + t] = best;
      tot += prob[best];
    }
    const div = normalize ? tot : 1;
    for (let t = 0; t < k; t++) weights[r * k + t] = prob[experts[r * k + t]] / div;
  }
  return { experts, weights };
}

/**
 * SwiGLU on a slice S of the intermediate dimension: with x [rows, hidden],
 * w1 = gate rows S [interSlice, hidden], w3 = up rows S [interSlice, hidden],
 * w2 = down columns S [hidden, interSlice] (WeightStore.cols), returns the partial
 *   (silu(x w1^T) * (x w3^T)) w2^T   [rows, hidden].
 * The gate, up and activation values are rounded to float32 (as a chip holds them); the sum of the
 * partials over a partition of the intermediate dimension equals the full expert up to the rounding
 * of the final reduction. With `accumulate`, the partial is added into `out` instead of overwriting.
 */
export function swigluSlice(
  x: Float32Array,
  rows: number,
  hidden: number,
  w1: Float32Array,
  w3: Float32Array,
  w2: Float32Array,
  interSlice: number,
  out?: Float32Array,
  accumulate = false,
): Float32Array {
  const g = matmulXWt(x, rows, hidden, w1, interSlice);
  const u = matmulXWt(x, rows, hidden, w3, interSlice);
  for (let i = 0; i < g.length; i++) g[i] = siluScalar(g[i]) * u[i];
  if (!accumulate) return matmulXWt(g, rows, interSlice, w2, hidden, out);
  if (!out) throw new RangeError('swigluSlice: accumulate needs out');
  const y = matmulXWt(g, rows, interSlice, w2, hidden);
  for (let i = 0; i < rows * hidden; i++) out[i] += y[i];
  return out;
}
