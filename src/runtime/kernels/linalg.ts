/**
 * Dense linear-algebra kernels: matmul in the Hugging Face Linear convention, RMSNorm, SiLU,
 * softmax and small element-wise helpers.
 *
 * Numerics (shared by every kernel in src/runtime/kernels/): tensors are row-major Float32Array;
 * every intermediate is a JS double and each result element is rounded to float32 exactly once
 * when it is stored. A product of two float32 values is exact in a double, so a dot product only
 * rounds in its summation, whose order is fixed (see `dot`). The same inputs therefore always give
 * bit-identical outputs, and one output element never depends on how many rows or output columns
 * were computed together (slicing W by output rows, or x by rows, gives bit-identical elements).
 * Slicing along the reduction dimension (partial sums combined later) changes the rounding only.
 */

/**
 * Dot product of x[xo .. xo+n) and w[wo .. wo+n) with a fixed summation order:
 * four double accumulators over k = 0,1,2,3 (mod 4) for k < n - n%4, combined as (s0+s1)+(s2+s3),
 * then the tail added in increasing k.
 */
export function dot(x: Float32Array, xo: number, w: Float32Array, wo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n4 = n - (n & 3);
  let k = 0;
  for (; k < n4; k += 4) {
    s0 += x[xo + k] * w[wo + k];
    s1 += x[xo + k + 1] * w[wo + k + 1];
    s2 += x[xo + k + 2] * w[wo + k + 2];
    s3 += x[xo + k + 3] * w[wo + k + 3];
  }
  let s = s0 + s1 + (s2 + s3);
  for (; k < n; k++) s += x[xo + k] * w[wo + k];
  return s;
}

/**
 * Two rows (x[xa..], x[xa+n..]) against one W row at once, sharing the W loads; each result has
 * exactly `dot`'s summation order, so it is bit-identical to two `dot` calls.
 */
function dot2(
  x: Float32Array,
  xa: number,
  w: Float32Array,
  wo: number,
  n: number,
  y: Float32Array,
  ya: number,
  yStride: number,
): void {
  const xb = xa + n;
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let b0 = 0;
  let b1 = 0;
  let b2 = 0;
  let b3 = 0;
  const n4 = n - (n & 3);
  let k = 0;
  for (; k < n4; k += 4) {
    const w0 = w[wo + k];
    const w1 = w[wo + k + 1];
    const w2 = w[wo + k + 2];
    const w3 = w[wo + k + 3];
    a0 += x[xa + k] * w0;
    a1 += x[xa + k + 1] * w1;
    a2 += x[xa + k + 2] * w2;
    a3 += x[xa + k + 3] * w3;
    b0 += x[xb + k] * w0;
    b1 += x[xb + k + 1] * w1;
    b2 += x[xb + k + 2] * w2;
    b3 += x[xb + k + 3] * w3;
  }
  let sa = a0 + a1 + (a2 + a3);
  let sb = b0 + b1 + (b2 + b3);
  for (; k < n; k++) {
    sa += x[xa + k] * w[wo + k];
    sb += x[xb + k] * w[wo + k];
  }
  y[ya] = sa;
  y[ya + yStride] = sb;
}

function checkLen(what: string, arr: ArrayLike<number>, need: number): void {
  if (arr.length < need) throw new RangeError(`${what}: length ${arr.length} < required ${need}`);
}

/** Bytes of x rows kept hot while streaming W (a block of rows is multiplied by each W row in turn). */
const ROW_BLOCK_BYTES = 128 * 1024;

/**
 * y = x W^T: x is [rows, inDim], w is [outDim, inDim] (HF Linear layout, or any contiguous block of
 * its output rows), y is [rows, outDim]. Each y element is `dot(x_row, w_row)` rounded to float32;
 * rows go in pairs against each W row (W reuse) with the identical per-element summation order.
 */
export function matmulXWt(
  x: Float32Array,
  rows: number,
  inDim: number,
  w: Float32Array,
  outDim: number,
  out?: Float32Array,
): Float32Array {
  checkLen('matmulXWt x', x, rows * inDim);
  checkLen('matmulXWt w', w, outDim * inDim);
  const y = out ?? new Float32Array(rows * outDim);
  checkLen('matmulXWt out', y, rows * outDim);
  const block = Math.max(1, Math.floor(ROW_BLOCK_BYTES / (4 * Math.max(1, inDim))));
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block);
    for (let j = 0; j < outDim; j++) {
      const wo = j * inDim;
      let i = r0;
      for (; i + 1 < r1; i += 2) dot2(x, i * inDim, w, wo, inDim, y, i * outDim + j, outDim);
      if (i < r1) y[i * outDim + j] = dot(x, i * inDim, w, wo, inDim);
    }
  }
  return y;
}

/**
 * Hugging Face LlamaRMSNorm: y = x * 1/sqrt(mean(x^2) + eps) * weight, per row of `dim`.
 * HF computes in float32 and rounds x*rsqrt before multiplying by the weight; here the sum of squares
 * (increasing index order), the scale and both products are doubles, rounded to float32 once.
 * `out` may alias `x`.
 */
export function rmsNorm(
  x: Float32Array,
  rows: number,
  dim: number,
  weight: Float32Array,
  eps: number,
  out?: Float32Array,
): Float32Array {
  checkLen('rmsNorm x', x, rows * dim);
  checkLen('rmsNorm weight', weight, dim);
  const y = out ?? new Float32Array(rows * dim);
  checkLen('rmsNorm out', y, rows * dim);
  for (let i = 0; i < rows; i++) {
    const o = i * dim;
    let ss = 0;
    for (let k = 0; k < dim; k++) ss += x[o + k] * x[o + k];
    const r = 1 / Math.sqrt(ss / dim + eps);
    for (let k = 0; k < dim; k++) y[o + k] = x[o + k] * r * weight[k];
  }
  return y;
}

/** SiLU (swish) of one value, in double: v / (1 + exp(-v)). */
/**
 * x [rows, n] += bias [n] in place, one float32 rounding per element (a projection's bias, added
 * after the rounded matmul on chips and in the reference alike).
 */
export function addBiasRows(x: Float32Array, rows: number, bias: Float32Array): Float32Array {
  const n = bias.length;
  checkLen('addBiasRows x', x, rows * n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let k = 0; k < n; k++) x[o + k] += bias[k];
  }
  return x;
}

/**
 * Per-head RMSNorm in place (Qwen3's q_norm / k_norm): x is [rows, nHeads, headDim], every head
 * vector is normalised over its headDim elements and scaled by weight [headDim].
 */
export function headRmsNorm(
  x: Float32Array,
  rows: number,
  nHeads: number,
  weight: Float32Array,
  eps: number,
): Float32Array {
  return rmsNorm(x, rows * nHeads, weight.length, weight, eps, x);
}

export function siluScalar(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** Element-wise SiLU; `out` may alias `x`. */
export function silu(x: Float32Array, out?: Float32Array): Float32Array {
  const y = out ?? new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = siluScalar(x[i]);
  return y;
}

/**
 * Row-wise softmax over `n` columns with max subtraction (exp and sum in double, increasing index
 * order; each value rounded to float32 once). `out` may alias `x`.
 */
export function softmax(x: Float32Array, rows: number, n: number, out?: Float32Array): Float32Array {
  checkLen('softmax x', x, rows * n);
  const y = out ?? new Float32Array(rows * n);
  const e = new Float64Array(n);
  for (let i = 0; i < rows; i++) {
    const o = i * n;
    let m = -Infinity;
    for (let k = 0; k < n; k++) if (x[o + k] > m) m = x[o + k];
    let s = 0;
    for (let k = 0; k < n; k++) {
      e[k] = Math.exp(x[o + k] - m);
      s += e[k];
    }
    for (let k = 0; k < n; k++) y[o + k] = e[k] / s;
  }
  return y;
}

/** dst[i] += src[i] (rounded to float32); returns dst. Used to sum partial results. */
export function addInPlace(dst: Float32Array, src: Float32Array): Float32Array {
  checkLen('addInPlace src', src, dst.length);
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
  return dst;
}

/** dst[i] += scale * src[i] (product and sum in double, rounded to float32 once); returns dst. */
export function scaleAddInPlace(dst: Float32Array, src: Float32Array, scale: number): Float32Array {
  checkLen('scaleAddInPlace src', src, dst.length);
  for (let i = 0; i < dst.length; i++) dst[i] += scale * src[i];
  return dst;
}
