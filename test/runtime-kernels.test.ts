import { describe, expect, it } from 'vitest';
import {
  KvCache,
  addInPlace,
  applyRope,
  argmaxRows,
  attend,
  combineArgmax,
  embedLookup,
  lmHeadSlice,
  matmulXWt,
  rmsNorm,
  routeTopK,
  silu,
  softmax,
  swigluSlice,
} from '../src/runtime/kernels.js';
import { mulberry32 } from './helpers/random.js';

// ---- seeded data -------------------------------------------------------------------------------
function randn(rng: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng() * 2 - 1) * scale;
  return a;
}
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, what = ''): void {
  expect(got.length, what).toBe(want.length);
  const tol = rel * Math.max(1, maxAbs(want));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst, what).toBeLessThanOrEqual(tol);
}

// ---- naive implementations ---------------------------------------------------------------------
function naiveMatmul(x: Float32Array, rows: number, inDim: number, w: Float32Array, outDim: number): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < outDim; j++) {
      let s = 0;
      for (let k = 0; k < inDim; k++) s += x[i * inDim + k] * w[j * inDim + k];
      y[i * outDim + j] = s;
    }
  return y;
}
const sig = (v: number) => 1 / (1 + Math.exp(-v));
function naiveExpert(
  x: Float32Array,
  rows: number,
  hidden: number,
  w1: Float32Array,
  w3: Float32Array,
  w2: Float32Array,
  inter: number,
): Float64Array {
  const g = naiveMatmul(x, rows, hidden, w1, inter);
  const u = naiveMatmul(x, rows, hidden, w3, inter);
  const a = new Float32Array(rows * inter);
  for (let i = 0; i < a.length; i++) a[i] = g[i] * sig(g[i]) * u[i];
  return naiveMatmul(a, rows, inter, w2, hidden);
}
/** Naive attention for one query head against explicit k/v lists. */
function naiveAttendHead(
  q: ArrayLike<number>,
  ks: ArrayLike<number>[],
  vs: ArrayLike<number>[],
  hd: number,
): Float64Array {
  const s = ks.map((k) => {
    let d = 0;
    for (let i = 0; i < hd; i++) d += q[i] * k[i];
    return d / Math.sqrt(hd);
  });
  const m = Math.max(...s);
  const e = s.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  const out = new Float64Array(hd);
  for (let j = 0; j < ks.length; j++) for (let i = 0; i < hd; i++) out[i] += (e[j] / z) * vs[j][i];
  return out;
}
function colsOf(w: Float32Array, rows: number, cols: number, c0: number, c1: number): Float32Array {
  const o = new Float32Array(rows * (c1 - c0));
  for (let r = 0; r < rows; r++) o.set(w.subarray(r * cols + c0, r * cols + c1), r * (c1 - c0));
  return o;
}

describe('runtime kernels', () => {
  it('runtime - matmulXWt matches a naive triple loop (odd sizes, many rows)', () => {
    const rng = mulberry32(1);
    for (const [rows, inDim, outDim] of [
      [1, 1, 1],
      [3, 7, 5],
      [5, 64, 33],
      [300, 131, 17],
    ]) {
      const x = randn(rng, rows * inDim);
      const w = randn(rng, outDim * inDim);
      expectClose(
        matmulXWt(x, rows, inDim, w, outDim),
        naiveMatmul(x, rows, inDim, w, outDim),
        1e-6,
        `${rows}x${inDim}x${outDim}`,
      );
    }
  });

  it('runtime - matmulXWt elements do not depend on row batching or output-row slicing (bit-identical)', () => {
    const rng = mulberry32(2);
    const rows = 9,
      inDim = 70,
      outDim = 12;
    const x = randn(rng, rows * inDim);
    const w = randn(rng, outDim * inDim);
    const full = matmulXWt(x, rows, inDim, w, outDim);
    for (let r = 0; r < rows; r++) {
      const one = matmulXWt(x.subarray(r * inDim, (r + 1) * inDim), 1, inDim, w, outDim);
      expect(Array.from(one)).toEqual(Array.from(full.subarray(r * outDim, (r + 1) * outDim)));
    }
    const part = matmulXWt(x, rows, inDim, w.subarray(4 * inDim, 9 * inDim), 5);
    for (let r = 0; r < rows; r++) for (let j = 0; j < 5; j++) expect(part[r * 5 + j]).toBe(full[r * outDim + 4 + j]);
    // into a provided buffer
    const out = new Float32Array(rows * outDim);
    expect(matmulXWt(x, rows, inDim, w, outDim, out)).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(full));
  });

  it('runtime - rmsNorm matches the HF formula', () => {
    const rng = mulberry32(3);
    const rows = 4,
      dim = 37,
      eps = 1e-5;
    const x = randn(rng, rows * dim, 3);
    const w = randn(rng, dim);
    const want = new Float64Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let k = 0; k < dim; k++) ss += x[r * dim + k] ** 2;
      const s = 1 / Math.sqrt(ss / dim + eps);
      for (let k = 0; k < dim; k++) want[r * dim + k] = x[r * dim + k] * s * w[k];
    }
    expectClose(rmsNorm(x, rows, dim, w, eps), want, 1e-6);
    const inPlace = Float32Array.from(x);
    rmsNorm(inPlace, rows, dim, w, eps, inPlace);
    expectClose(inPlace, want, 1e-6);
  });

  it('runtime - silu and softmax match naive formulas', () => {
    const rng = mulberry32(4);
    const x = randn(rng, 60, 8);
    expectClose(
      silu(x),
      Array.from(x, (v) => v * sig(v)),
      1e-6,
    );
    const rows = 3,
      n = 20;
    const big = Float32Array.from(x, (v) => v * 10); // large values: max subtraction must keep it finite
    const sm = softmax(big, rows, n);
    for (let r = 0; r < rows; r++) {
      const row = Array.from(big.subarray(r * n, (r + 1) * n));
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      expectClose(
        sm.subarray(r * n, (r + 1) * n),
        e.map((v) => v / z),
        1e-6,
      );
    }
  });

  it('runtime - rope follows q*cos + rotate_half(q)*sin; position 0 is the identity', () => {
    const rng = mulberry32(5);
    const rows = 3,
      nHeads = 2,
      hd = 8,
      theta = 10000;
    const positions = [0, 5, 1234];
    const x = randn(rng, rows * nHeads * hd);
    const y = applyRope(Float32Array.from(x), rows, nHeads, hd, positions, theta, null);
    const half = hd / 2;
    for (let r = 0; r < rows; r++)
      for (let h = 0; h < nHeads; h++) {
        const o = (r * nHeads + h) * hd;
        const q = Array.from(x.subarray(o, o + hd));
        const rot = [...q.slice(half).map((v) => -v), ...q.slice(0, half)];
        const want = q.map((v, d) => {
          const ang = positions[r] * (1 / theta ** ((2 * (d % half)) / hd));
          return v * Math.cos(ang) + rot[d] * Math.sin(ang);
        });
        expectClose(y.subarray(o, o + hd), want, 1e-6);
        if (positions[r] === 0) expect(Array.from(y.subarray(o, o + hd))).toEqual(q);
      }
  });

  it('runtime - attention over a single cached position returns v exactly', () => {
    const rng = mulberry32(6);
    const kvh = 2,
      hd = 8,
      group = 2;
    const cache = new KvCache(4, kvh, hd);
    const k = randn(rng, kvh * hd);
    const v = randn(rng, kvh * hd);
    cache.append(k, v, [0]);
    const q = randn(rng, kvh * group * hd, 5);
    const out = attend(q, cache, [0], group);
    for (let h = 0; h < kvh * group; h++) {
      const g = Math.floor(h / group);
      expect(Array.from(out.subarray(h * hd, (h + 1) * hd))).toEqual(Array.from(v.subarray(g * hd, (g + 1) * hd)));
    }
  });

  it('runtime - attention is causal and matches naive masked attention (prefill rows)', () => {
    const rng = mulberry32(7);
    const T = 6,
      kvh = 1,
      hd = 16,
      nh = 3;
    const cache = new KvCache(10, kvh, hd);
    const k = randn(rng, T * kvh * hd);
    const v = randn(rng, T * kvh * hd);
    const pos = Array.from({ length: T }, (_, i) => i);
    cache.append(k, v, pos);
    const q = randn(rng, T * nh * hd, 2);
    const out = attend(q, cache, pos, nh);
    for (let p = 0; p < T; p++)
      for (let h = 0; h < nh; h++) {
        const ks = Array.from({ length: p + 1 }, (_, j) => k.subarray(j * hd, (j + 1) * hd));
        const vs = Array.from({ length: p + 1 }, (_, j) => v.subarray(j * hd, (j + 1) * hd));
        const o = (p * nh + h) * hd;
        expectClose(out.subarray(o, o + hd), naiveAttendHead(q.subarray(o, o + hd), ks, vs, hd), 1e-6);
      }
    // future positions do not matter: overwrite positions > 2 and recompute row 2
    const row2 = out.slice(2 * nh * hd, 3 * nh * hd);
    cache.append(randn(rng, 3 * hd), randn(rng, 3 * hd), [3, 4, 5]);
    const again = attend(q.subarray(2 * nh * hd, 3 * nh * hd), cache, [2], nh);
    expect(Array.from(again)).toEqual(Array.from(row2));
  });

  it('runtime - sliding-window attention sees only positions p-window < j <= p', () => {
    const rng = mulberry32(8);
    const T = 8,
      hd = 8,
      win = 3;
    const cache = new KvCache(T, 1, hd);
    const k = randn(rng, T * hd);
    const v = randn(rng, T * hd);
    const pos = Array.from({ length: T }, (_, i) => i);
    cache.append(k, v, pos);
    const q = randn(rng, T * hd, 2);
    const out = attend(q, cache, pos, 1, win);
    for (let p = 0; p < T; p++) {
      const js = pos.filter((j) => j <= p && j > p - win);
      const want = naiveAttendHead(
        q.subarray(p * hd, (p + 1) * hd),
        js.map((j) => k.subarray(j * hd, (j + 1) * hd)),
        js.map((j) => v.subarray(j * hd, (j + 1) * hd)),
        hd,
      );
      expectClose(out.subarray(p * hd, (p + 1) * hd), want, 1e-6);
    }
  });

  it('runtime - GQA: q head h reads kv head floor(h/groupSize); head slices give identical results', () => {
    const rng = mulberry32(9);
    const kvh = 2,
      group = 3,
      nh = kvh * group,
      hd = 4,
      T = 3;
    const cache = new KvCache(T, kvh, hd);
    const k = randn(rng, T * kvh * hd);
    const v = new Float32Array(T * kvh * hd);
    for (let t = 0; t < T; t++)
      for (let g = 0; g < kvh; g++) v.fill(100 * (g + 1) + t, (t * kvh + g) * hd, (t * kvh + g + 1) * hd);
    const pos = [0, 1, 2];
    cache.append(k, v, pos);
    const q = randn(rng, T * nh * hd);
    const out = attend(q, cache, pos, group);
    for (let r = 0; r < T; r++)
      for (let h = 0; h < nh; h++) {
        const g = Math.floor(h / group);
        const val = out[(r * nh + h) * hd];
        expect(val).toBeGreaterThanOrEqual(100 * (g + 1) - 1e-4);
        expect(val).toBeLessThanOrEqual(100 * (g + 1) + r + 1e-4);
        const ks = Array.from({ length: r + 1 }, (_, j) => k.subarray((j * kvh + g) * hd, (j * kvh + g + 1) * hd));
        const vs = Array.from({ length: r + 1 }, (_, j) => v.subarray((j * kvh + g) * hd, (j * kvh + g + 1) * hd));
        const o = (r * nh + h) * hd;
        expectClose(out.subarray(o, o + hd), naiveAttendHead(q.subarray(o, o + hd), ks, vs, hd), 1e-6);
      }
    // A chip holding q heads 2..4 (crossing the group boundary) and kv heads 0..1, and one holding
    // q heads 3..5 with only kv head 1: bit-identical to the same heads of the full computation.
    const sliceQ = (h0: number, h1: number) => {
      const s = new Float32Array(T * (h1 - h0) * hd);
      for (let r = 0; r < T; r++) s.set(q.subarray((r * nh + h0) * hd, (r * nh + h1) * hd), r * (h1 - h0) * hd);
      return s;
    };
    const a = attend(sliceQ(2, 5), cache, pos, group, null, { qHeadOffset: 2 });
    const c1 = new KvCache(T, 1, hd, 1);
    c1.append(colsOf(k, T, kvh * hd, hd, 2 * hd), colsOf(v, T, kvh * hd, hd, 2 * hd), pos);
    const b = attend(sliceQ(3, 6), c1, pos, group, null, { qHeadOffset: 3 });
    for (let r = 0; r < T; r++) {
      expect(Array.from(a.subarray(r * 3 * hd, (r + 1) * 3 * hd))).toEqual(
        Array.from(out.subarray((r * nh + 2) * hd, (r * nh + 5) * hd)),
      );
      expect(Array.from(b.subarray(r * 3 * hd, (r + 1) * 3 * hd))).toEqual(
        Array.from(out.subarray((r * nh + 3) * hd, (r * nh + 6) * hd)),
      );
    }
    expect(() => attend(sliceQ(0, 1), c1, pos, group)).toThrow(RangeError);
  });

  it('runtime - KV cache rejects positions outside its capacity and attention beyond its length', () => {
    const c = new KvCache(2, 1, 2);
    expect(() => c.append(new Float32Array(2), new Float32Array(2), [2])).toThrow(RangeError);
    c.append(new Float32Array(2), new Float32Array(2), [0]);
    expect(() => attend(new Float32Array(2), c, [1], 1)).toThrow(RangeError);
    c.truncate(0);
    expect(c.length).toBe(0);
  });

  it('runtime - router: softmax top-k renormalised to 1, ties to the lower expert index', () => {
    const rng = mulberry32(10);
    const rows = 5,
      E = 8,
      K = 2;
    const logits = randn(rng, rows * E, 3);
    const { experts, weights } = routeTopK(logits, rows, E, K, true);
    for (let r = 0; r < rows; r++) {
      const row = Array.from(logits.subarray(r * E, (r + 1) * E));
      const m = Math.max(...row);
      const p = row.map((v) => Math.exp(v - m));
      const z = p.reduce((a, b) => a + b, 0);
      const order = p.map((v, i) => [v / z, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      const top = order.slice(0, K);
      const s = top.reduce((a, t) => a + t[0], 0);
      expect(Array.from(experts.subarray(r * K, (r + 1) * K))).toEqual(top.map((t) => t[1]));
      expectClose(
        weights.subarray(r * K, (r + 1) * K),
        top.map((t) => t[0] / s),
        1e-6,
      );
      expect(Math.abs(weights[r * K] + weights[r * K + 1] - 1)).toBeLessThan(1e-6);
    }
    // ties: all equal -> experts 0,1 with 0.5 each; a tie for second place -> the lower index
    const tie = routeTopK(Float32Array.from([1, 1, 1, 1, 0, 3, 2, 2]), 2, 4, 2, true);
    expect(Array.from(tie.experts)).toEqual([0, 1, 1, 2]);
    expect(Array.from(tie.weights.subarray(0, 2))).toEqual([0.5, 0.5]);
    expect(tie.weights[2]).toBeGreaterThan(tie.weights[3]);
    expect(() => routeTopK(new Float32Array(4), 1, 4, 5, true)).toThrow(RangeError);
  });

  it('runtime - swiglu partials over intermediate slices sum to the full expert', () => {
    const rng = mulberry32(11);
    const rows = 3,
      hidden = 24,
      inter = 40;
    const x = randn(rng, rows * hidden);
    const w1 = randn(rng, inter * hidden, 0.3);
    const w3 = randn(rng, inter * hidden, 0.3);
    const w2 = randn(rng, hidden * inter, 0.3);
    const full = swigluSlice(x, rows, hidden, w1, w3, w2, inter);
    expectClose(full, naiveExpert(x, rows, hidden, w1, w3, w2, inter), 1e-6, 'full vs naive');
    for (const cuts of [
      [0, 20, 40],
      [0, 7, 8, 31, 40],
      [0, 1, 2, 3, 4, 40],
    ]) {
      const sum = new Float32Array(rows * hidden);
      for (let s = 0; s + 1 < cuts.length; s++) {
        const [a, b] = [cuts[s], cuts[s + 1]];
        const part = swigluSlice(
          x,
          rows,
          hidden,
          w1.subarray(a * hidden, b * hidden),
          w3.subarray(a * hidden, b * hidden),
          colsOf(w2, hidden, inter, a, b),
          b - a,
        );
        addInPlace(sum, part);
      }
      expectClose(sum, full, 1e-5, `cuts ${cuts}`);
    }
    // accumulate mode adds into out
    const acc = Float32Array.from(full);
    swigluSlice(x, rows, hidden, w1, w3, w2, inter, acc, true);
    expectClose(
      acc,
      Array.from(full, (v) => 2 * v),
      1e-6,
    );
  });

  it('runtime - embedding partials over vocab ranges sum exactly to the embedding', () => {
    const rng = mulberry32(12);
    const V = 50,
      H = 6;
    const table = randn(rng, V * H);
    const ids = [0, 49, 17, 17, 32, 16];
    const full = embedLookup(ids, table, 0, V, H);
    for (let r = 0; r < ids.length; r++)
      expect(Array.from(full.subarray(r * H, (r + 1) * H))).toEqual(
        Array.from(table.subarray(ids[r] * H, (ids[r] + 1) * H)),
      );
    const sum = new Float32Array(ids.length * H);
    for (const [a, b] of [
      [0, 17],
      [17, 32],
      [32, 50],
    ])
      addInPlace(sum, embedLookup(ids, table.subarray(a * H, b * H), a, b, H));
    expect(Array.from(sum)).toEqual(Array.from(full));
  });

  it('runtime - lm_head slices are bit-identical to the full logits; argmax partials combine like torch.argmax', () => {
    const rng = mulberry32(13);
    const rows = 4,
      H = 16,
      V = 30;
    const x = randn(rng, rows * H);
    const w = randn(rng, V * H);
    const full = lmHeadSlice(x, rows, H, w, 0, V);
    // plant ties: row 1 max at 5 and 20 (different slices), row 2 max at 11 and 12 (same slice)
    full[1 * V + 5] = full[1 * V + 20] = 100;
    full[2 * V + 11] = full[2 * V + 12] = 100;
    full[3 * V + 25] = NaN;
    const want = argmaxRows(full, rows, V);
    for (let r = 0; r < rows; r++) {
      const row = Array.from(full.subarray(r * V, (r + 1) * V));
      const nan = row.findIndex((v) => Number.isNaN(v));
      expect(want.indices[r]).toBe(nan >= 0 ? nan : row.indexOf(Math.max(...row)));
    }
    expect(want.indices[1]).toBe(5);
    expect(want.indices[2]).toBe(11);
    const cuts = [0, 8, 12, 21, 30];
    const parts = cuts.slice(0, -1).map((a, s) => {
      const b = cuts[s + 1];
      const slice = lmHeadSlice(x, rows, H, w.subarray(a * H, b * H), a, b);
      for (let r = 0; r < rows; r++) for (let c = a; c < b; c++) slice[r * (b - a) + c - a] = full[r * V + c];
      return argmaxRows(slice, rows, b - a, a);
    });
    // lm_head slices: bit-identical columns (checked before the planted values overwrote them)
    const fresh = lmHeadSlice(x, rows, H, w, 0, V);
    const s1 = lmHeadSlice(x, rows, H, w.subarray(8 * H, 12 * H), 8, 12);
    for (let r = 0; r < rows; r++) for (let c = 8; c < 12; c++) expect(s1[r * 4 + c - 8]).toBe(fresh[r * V + c]);
    for (const order of [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [2, 0, 3, 1],
    ]) {
      const got = combineArgmax(...order.map((i) => parts[i]));
      expect(Array.from(got.indices)).toEqual(Array.from(want.indices));
    }
    const nested = combineArgmax(combineArgmax(parts[3], parts[1]), combineArgmax(parts[2], parts[0]));
    expect(Array.from(nested.indices)).toEqual(Array.from(want.indices));
  });
});
