/**
 * Numeric kernels of a chip and of the single-process reference. They work on slices of tensors
 * (row ranges, head ranges, intermediate or vocab ranges) held by one chip; see the files under
 * ./kernels/ for the numerical contract (double accumulation in a fixed order, one float32 rounding
 * per stored element).
 */
export {
  dot,
  matmulXWt,
  rmsNorm,
  headRmsNorm,
  addBiasRows,
  silu,
  siluScalar,
  softmax,
  addInPlace,
  scaleAddInPlace,
} from './kernels/linalg.js';
export { ropeInvFreq, applyRope, KvCache, attend } from './kernels/attention.js';
export type { AttendOptions } from './kernels/attention.js';
export { projectQkv } from './kernels/qkv.js';
export type { Qkv, QkvWeights } from './kernels/qkv.js';
export { routeTopK, swigluSlice } from './kernels/ffn.js';
export type { Routing } from './kernels/ffn.js';
export { embedLookup, lmHeadSlice, argmaxRows, argmaxBetter, combineArgmax } from './kernels/vocab.js';
export type { ArgmaxPartial } from './kernels/vocab.js';
