/**
 * Rotary position embeddings (HF rotate-half convention), the per-chip KV cache and grouped-query
 * causal attention over it. Heads are independent, so a chip may hold any subset of q heads and the
 * kv heads they read; numerics follow linalg.ts (doubles inside, float32 rounding on store).
 */
import type { RopeScaling } from '../../model/config.js';

/**
 * inv_freq[i] = 1 / theta^(2i/headDim), i < headDim/2, in double; with Llama 3 scaling, transformers'
 * _compute_llama3_parameters on top: with wavelen = 2*pi/inv_freq and L = originalMaxPositions,
 *   wavelen > L/lowFreqFactor   -> inv_freq / factor                      (low frequencies)
 *   wavelen < L/highFreqFactor  -> inv_freq                               (high frequencies)
 *   otherwise, smooth = (L/wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor),
 *                       (1 - smooth) * inv_freq / factor + smooth * inv_freq.
 * The one place inverse frequencies are computed: chips and the reference share it.
 */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling | null): Float64Array {
  if (headDim % 2 !== 0) throw new RangeError(`rope: headDim ${headDim} is odd`);
  const half = headDim / 2;
  const f = new Float64Array(half);
  for (let i = 0; i < half; i++) f[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  if (scaling === null) return f;
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: L } = scaling;
  const lowFreqWavelen = L / low;
  const highFreqWavelen = L / high;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / f[i];
    if (wavelen > lowFreqWavelen) f[i] = f[i] / factor;
    else if (wavelen >= highFreqWavelen) {
      const smooth = (L / wavelen - low) / (high - low);
      f[i] = ((1 - smooth) * f[i]) / factor + smooth * f[i];
    }
  }
  return f;
}

/**
 * In-place RoPE on x = [rows, nHeads, headDim]; row r is at position positions[r].
 * With c = cos(p * inv_freq[i]), s = sin(p * inv_freq[i]) (angles and trig in double; HF uses
 * float32 angles) and half = headDim/2, for i < half:
 *   x'[i]      = x[i] * c - x[i+half] * s
 *   x'[i+half] = x[i+half] * c + x[i] * s
 * i.e. x*cos + rotate_half(x)*sin with cos/sin duplicated over both halves. Position 0 is the identity.
 * inv_freq is ropeInvFreq(headDim, theta, scaling).
 */
export function applyRope(
  x: Float32Array,
  rows: number,
  nHeads: number,
  headDim: number,
  positions: ArrayLike<number>,
  theta: number,
  scaling: RopeScaling | null,
): Float32Array {
  if (positions.length < rows) throw new RangeError(`applyRope: ${positions.length} positions for ${rows} rows`);
  if (x.length < rows * nHeads * headDim) throw new RangeError('applyRope: x is too short');
  const inv = ropeInvFreq(headDim, theta, scaling);
  const half = headDim / 2;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let r = 0; r < rows; r++) {
    const p = positions[r];
    for (let i = 0; i < half; i++) {
      const a = p * inv[i];
      cos[i] = Math.cos(a);
      sin[i] = Math.sin(a);
    }
    for (let h = 0; h < nHeads; h++) {
      const o = (r * nHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[o + i];
        const b = x[o + i + half];
        x[o + i] = a * cos[i] - b * sin[i];
        x[o + i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
  return x;
}

/**
 * K and V for one layer and one sequence, for the kv heads [kvHeadOffset, kvHeadOffset + kvHeads)
 * that a chip holds. Slot = position: layout [capacity, kvHeads, headDim] for each of K and V.
 */
export class KvCache {
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** Positions [0, length) are expected to have been appended (length = highest position + 1). */
  length = 0;

  constructor(
    readonly capacity: number,
    readonly kvHeads: number,
    readonly headDim: number,
    /** Global index of the first kv head held (for GQA head mapping of q-head slices). */
    readonly kvHeadOffset = 0,
  ) {
    this.k = new Float32Array(capacity * kvHeads * headDim);
    this.v = new Float32Array(capacity * kvHeads * headDim);
  }

  get rowSize(): number {
    return this.kvHeads * this.headDim;
  }

  /** Store k, v rows ([rows, kvHeads*headDim] each) at the given positions. */
  append(k: Float32Array, v: Float32Array, positions: ArrayLike<number>): void {
    const rs = this.rowSize;
    const rows = positions.length;
    if (k.length < rows * rs || v.length < rows * rs) {
      throw new RangeError(`KvCache.append: k/v shorter than ${rows} rows of ${rs}`);
    }
    for (let r = 0; r < rows; r++) {
      const p = positions[r];
      if (!Number.isInteger(p) || p < 0 || p >= this.capacity) {
        throw new RangeError(`KvCache.append: position ${p} outside [0, ${this.capacity})`);
      }
      this.k.set(k.subarray(r * rs, (r + 1) * rs), p * rs);
      this.v.set(v.subarray(r * rs, (r + 1) * rs), p * rs);
      if (p + 1 > this.length) this.length = p + 1;
    }
  }

  /** Forget positions >= len (e.g. a new request in the same slot: truncate(0)). */
  truncate(len: number): void {
    this.length = Math.min(this.length, Math.max(0, len));
  }
}

export interface AttendOptions {
  /** Global index of q head 0 of `q` (default 0): q head h reads kv head floor((qHeadOffset+h)/groupSize). */
  qHeadOffset?: number;
  out?: Float32Array;
}

/**
 * Causal grouped-query attention. q is [rows, nHeadsLocal, headDim] (already roped), row r at
 * positions[r]; the matching k/v rows must already be in `cache`. Row r attends to cached positions j
 * with j <= p and, if slidingWindow is set, j > p - slidingWindow (Mistral). Local q head h uses global
 * kv head g = floor((qHeadOffset + h) / groupSize), i.e. cache head g - cache.kvHeadOffset.
 * Scores q.k / sqrt(headDim), softmax with max subtraction; scores, exp, sums and the weighted V
 * sum are doubles in increasing position order, rounded to float32 once.
 * Returns [rows, nHeadsLocal*headDim].
 */
export function attend(
  q: Float32Array,
  cache: KvCache,
  positions: ArrayLike<number>,
  groupSize: number,
  slidingWindow: number | null = null,
  opts: AttendOptions = {},
): Float32Array {
  const rows = positions.length;
  const hd = cache.headDim;
  if (rows === 0) return opts.out ?? new Float32Array(0);
  const nHeads = q.length / (rows * hd);
  if (!Number.isInteger(nHeads) || nHeads < 1) {
    throw new RangeError(`attend: q length ${q.length} is not rows(${rows}) x heads x headDim(${hd})`);
  }
  const qOff = opts.qHeadOffset ?? 0;
  const out = opts.out ?? new Float32Array(rows * nHeads * hd);
  if (out.length < rows * nHeads * hd) throw new RangeError('attend: out is too short');
  const rs = cache.rowSize;
  const scale = 1 / Math.sqrt(hd);
  const kc = cache.k;
  const vc = cache.v;
  let scores = new Float64Array(16);
  const acc = new Float64Array(hd);
  for (let r = 0; r < rows; r++) {
    const p = positions[r];
    if (p >= cache.length) throw new RangeError(`attend: position ${p} not in cache (length ${cache.length})`);
    const lo = slidingWindow == null ? 0 : Math.max(0, p - slidingWindow + 1);
    const n = p - lo + 1;
    if (scores.length < n) scores = new Float64Array(Math.max(n, 2 * scores.length));
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor((qOff + h) / groupSize) - cache.kvHeadOffset;
      if (kvh < 0 || kvh >= cache.kvHeads) {
        throw new RangeError(
          `attend: q head ${qOff + h} needs kv head ${kvh + cache.kvHeadOffset}, not held by this cache`,
        );
      }
      const qo = (r * nHeads + h) * hd;
      let m = -Infinity;
      for (let j = 0; j < n; j++) {
        const ko = (lo + j) * rs + kvh * hd;
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[qo + d] * kc[ko + d];
        s *= scale;
        scores[j] = s;
        if (s > m) m = s;
      }
      let sum = 0;
      acc.fill(0);
      for (let j = 0; j < n; j++) {
        const e = Math.exp(scores[j] - m);
        sum += e;
        const vo = (lo + j) * rs + kvh * hd;
        for (let d = 0; d < hd; d++) acc[d] += e * vc[vo + d];
      }
      const inv = 1 / sum;
      for (let d = 0; d < hd; d++) out[qo + d] = acc[d] * inv;
    }
  }
  return out;
}
