import { describe, expect, it } from 'vitest';
import type { Llama3RopeScaling } from '../src/model/config.js';
import { applyRope, projectQkv, ropeInvFreq, routeTopK } from '../src/runtime/kernels.js';
import { mulberry32 } from './helpers/random.js';

function rand(rng: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng() * 2 - 1) * scale;
  return a;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(tol);
}

// Llama 3.1's published rope_scaling
const LLAMA31: Llama3RopeScaling = {
  type: 'llama3',
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
};

describe('runtime kernels - model families', () => {
  it('runtime - llama3 inverse frequencies follow the formula in each band', () => {
    const hd = 128;
    const theta = 500000;
    const got = ropeInvFreq(hd, theta, LLAMA31);
    const plain = ropeInvFreq(hd, theta, null);
    // independently: wavelengths against L/high = 2048 and L/low = 8192
    const bands = new Set<string>();
    for (const i of [0, 10, 28, 29, 31, 34, 35, 50, 63]) {
      const inv = 1 / theta ** ((2 * i) / hd);
      const wavelen = (2 * Math.PI) / inv;
      let want: number;
      if (wavelen < 8192 / 4) {
        bands.add('high');
        want = inv;
      } else if (wavelen > 8192 / 1) {
        bands.add('low');
        want = inv / 8;
      } else {
        bands.add('smooth');
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        want = ((1 - smooth) * inv) / 8 + smooth * inv;
        // strictly between the two ends
        expect(want).toBeGreaterThan(inv / 8);
        expect(want).toBeLessThan(inv);
      }
      expect(got[i] / want - 1, `index ${i}`).toBeCloseTo(0, 12);
      expect(plain[i] / inv - 1).toBeCloseTo(0, 12);
    }
    expect([...bands].sort()).toEqual(['high', 'low', 'smooth']);
  });

  it('runtime - applyRope rotates by the scaled frequencies', () => {
    const rng = mulberry32(21);
    const hd = 16;
    const scaling: Llama3RopeScaling = { ...LLAMA31, originalMaxPositions: 64 };
    const inv = ropeInvFreq(hd, 500000, scaling);
    const x = rand(rng, 2 * hd);
    const y = applyRope(Float32Array.from(x), 2, 1, hd, [0, 37], 500000, scaling);
    const half = hd / 2;
    const want = Array.from(x.subarray(hd), (v, d) => {
      const rot = d < half ? -x[hd + d + half] : x[hd + d - half];
      const a = 37 * inv[d % half];
      return v * Math.cos(a) + rot * Math.sin(a);
    });
    expectClose(y.subarray(hd), want, 1e-6);
    expect(Array.from(y.subarray(0, hd))).toEqual(Array.from(x.subarray(0, hd)));
    // the scaling changes the result (low frequencies are slowed down)
    const unscaled = applyRope(Float32Array.from(x), 2, 1, hd, [0, 37], 500000, null);
    expect(Math.max(...y.subarray(hd).map((v, i) => Math.abs(v - unscaled[hd + i])))).toBeGreaterThan(1e-3);
  });

  it('runtime - projectQkv adds the biases, normalises q and k per head, then ropes', () => {
    const rng = mulberry32(22);
    const H = 8;
    const hd = 4;
    const heads = 3; // 12 = heads*headDim != hidden 8
    const kvHeads = 1;
    const rows = 2;
    const positions = [0, 5];
    const m = {
      hidden: H,
      headDim: hd,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: null,
      attentionBias: true,
      qkNorm: true,
    };
    const w = {
      q: rand(rng, heads * hd * H),
      k: rand(rng, kvHeads * hd * H),
      v: rand(rng, kvHeads * hd * H),
      qBias: rand(rng, heads * hd),
      kBias: rand(rng, kvHeads * hd),
      vBias: rand(rng, kvHeads * hd),
      qNorm: Float32Array.from(rand(rng, hd, 0.1), (v) => 1 + v),
      kNorm: Float32Array.from(rand(rng, hd, 0.1), (v) => 1 + v),
    };
    const x = rand(rng, rows * H);
    const got = projectQkv(m, x, rows, heads, kvHeads, w, positions);

    // naive: linear + bias, per-head RMSNorm, rotate-half RoPE, all in doubles
    const linear = (W: Float32Array, b: Float32Array, n: number) =>
      Array.from({ length: rows * n }, (_, j) => {
        const r = Math.floor(j / n);
        const o = j % n;
        let s = b[o];
        for (let d = 0; d < H; d++) s += x[r * H + d] * W[o * H + d];
        return s;
      });
    const normRope = (y: number[], nh: number, g: Float32Array) => {
      const out = [...y];
      for (let r = 0; r < rows; r++)
        for (let h = 0; h < nh; h++) {
          const o = (r * nh + h) * hd;
          const v = y.slice(o, o + hd);
          const rms = Math.sqrt(v.reduce((a, b) => a + b * b, 0) / hd + 1e-6);
          const n = v.map((e, d) => (e / rms) * g[d]);
          for (let d = 0; d < hd; d++) {
            const i = d % (hd / 2);
            const a = positions[r] / 10000 ** ((2 * i) / hd);
            const rot = d < hd / 2 ? -n[d + hd / 2] : n[d - hd / 2];
            out[o + d] = n[d] * Math.cos(a) + rot * Math.sin(a);
          }
        }
      return out;
    };
    expectClose(got.q, normRope(linear(w.q, w.qBias, heads * hd), heads, w.qNorm), 1e-5);
    expectClose(got.k, normRope(linear(w.k, w.kBias, kvHeads * hd), kvHeads, w.kNorm), 1e-5);
    expectClose(got.v, linear(w.v, w.vBias, kvHeads * hd), 1e-5);

    // a q head's norm makes it unit-RMS before the weight: each head is normalised on its own
    const plain = projectQkv({ ...m, attentionBias: false, qkNorm: false }, x, rows, heads, kvHeads, w, [0, 0]);
    const withNorm = projectQkv({ ...m, attentionBias: false }, x, rows, heads, kvHeads, w, [0, 0]);
    expect(Array.from(withNorm.q)).not.toEqual(Array.from(plain.q));
    expect(() => projectQkv(m, x, rows, heads, kvHeads, { q: w.q, k: w.k, v: w.v }, positions)).toThrow(/q_proj.bias/);
  });

  it('runtime - router without renormalisation keeps the softmax probabilities', () => {
    const logits = Float32Array.from([2, 0, 1, -1]);
    const norm = routeTopK(logits, 1, 4, 2, true);
    const raw = routeTopK(logits, 1, 4, 2, false);
    expect(Array.from(raw.experts)).toEqual([0, 2]);
    expect(Array.from(norm.experts)).toEqual([0, 2]);
    const e = [2, 0, 1, -1].map((v) => Math.exp(v - 2));
    const z = e.reduce((a, b) => a + b, 0);
    expectClose(raw.weights, [e[0] / z, e[2] / z], 1e-7);
    expectClose(norm.weights, [e[0] / (e[0] + e[2]), e[2] / (e[0] + e[2])], 1e-7);
  });
});
