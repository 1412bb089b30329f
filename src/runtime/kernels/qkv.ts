/**
 * The q/k/v part of an attention layer for a range of heads, shared by the chips (their head slices)
 * and the reference (all heads), so both apply the same steps in the same order:
 *   projection (matmul, float32) -> + bias (Qwen2) -> per-head RMSNorm of q and k (Qwen3) -> RoPE.
 */
import type { ModelConfig } from '../../model/config.js';
import { applyRope } from './attention.js';
import { addBiasRows, headRmsNorm, matmulXWt } from './linalg.js';

/** Weight slices for `heads` q heads and `kvHeads` kv heads; optional parts follow the config. */
export interface QkvWeights {
  /** [heads*headDim, hidden], [kvHeads*headDim, hidden] x 2. */
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The matching rows of the biases, when config.attentionBias. */
  readonly qBias?: Float32Array;
  readonly kBias?: Float32Array;
  readonly vBias?: Float32Array;
  /** [headDim], when config.qkNorm. */
  readonly qNorm?: Float32Array;
  readonly kNorm?: Float32Array;
}

export interface Qkv {
  /** [rows, heads*headDim], roped. */
  readonly q: Float32Array;
  /** [rows, kvHeads*headDim], roped. */
  readonly k: Float32Array;
  /** [rows, kvHeads*headDim]. */
  readonly v: Float32Array;
}

type QkvModel = Pick<
  ModelConfig,
  'hidden' | 'headDim' | 'rmsNormEps' | 'ropeTheta' | 'ropeScaling' | 'attentionBias' | 'qkNorm'
>;

function need(w: Float32Array | undefined, what: string): Float32Array {
  if (w === undefined) throw new RangeError(`projectQkv: the config needs ${what}, which was not given`);
  return w;
}

/** q, k, v of normalised input xn [rows, hidden] for rows at `positions`. */
export function projectQkv(
  m: QkvModel,
  xn: Float32Array,
  rows: number,
  heads: number,
  kvHeads: number,
  w: QkvWeights,
  positions: ArrayLike<number>,
): Qkv {
  const H = m.hidden;
  const hd = m.headDim;
  const q = matmulXWt(xn, rows, H, w.q, heads * hd);
  const k = matmulXWt(xn, rows, H, w.k, kvHeads * hd);
  const v = matmulXWt(xn, rows, H, w.v, kvHeads * hd);
  if (m.attentionBias) {
    addBiasRows(q, rows, need(w.qBias, 'q_proj.bias'));
    addBiasRows(k, rows, need(w.kBias, 'k_proj.bias'));
    addBiasRows(v, rows, need(w.vBias, 'v_proj.bias'));
  }
  if (m.qkNorm) {
    headRmsNorm(q, rows, heads, need(w.qNorm, 'q_norm.weight'), m.rmsNormEps);
    headRmsNorm(k, rows, kvHeads, need(w.kNorm, 'k_norm.weight'), m.rmsNormEps);
  }
  applyRope(q, rows, heads, hd, positions, m.ropeTheta, m.ropeScaling);
  applyRope(k, rows, kvHeads, hd, positions, m.ropeTheta, m.ropeScaling);
  return { q, k, v };
}
