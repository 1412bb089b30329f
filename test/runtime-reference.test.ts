import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../src/model/config.js';
import { requiredTensors } from '../src/model/tensors.js';
import type { WeightStore } from '../src/model/weights.js';
import { ReferenceModel, referenceGenerate } from '../src/runtime/reference.js';
import { RackemuError } from '../src/util/errors.js';
import { mulberry32 } from './helpers/random.js';

// ---- a tiny in-test WeightStore with seeded random weights --------------------------------------

class MapStore implements WeightStore {
  constructor(readonly t: Map<string, { shape: number[]; data: Float32Array }>) {}
  private get(name: string) {
    const e = this.t.get(name);
    if (!e) throw new Error(`missing tensor ${name}`);
    return e;
  }
  shape(name: string): readonly number[] {
    return this.get(name).shape;
  }
  has(name: string): boolean {
    return this.t.has(name);
  }
  rows(name: string, r0: number, r1: number): Float32Array {
    const e = this.get(name);
    const w = e.shape.length === 1 ? 1 : e.shape[1];
    return e.data.slice(r0 * w, r1 * w);
  }
  cols(name: string, c0: number, c1: number): Float32Array {
    const e = this.get(name);
    const [R, C] = e.shape;
    const o = new Float32Array(R * (c1 - c0));
    for (let r = 0; r < R; r++) o.set(e.data.subarray(r * C + c0, r * C + c1), r * (c1 - c0));
    return o;
  }
  full(name: string): Float32Array {
    return this.get(name).data.slice();
  }
}

function randomStore(c: ModelConfig, seed: number): MapStore {
  const rng = mulberry32(seed);
  const t = new Map<string, { shape: number[]; data: Float32Array }>();
  const lin = (name: string, out: number, inp: number) => {
    const s = Math.sqrt(3 / inp); // uniform with variance 1/in
    t.set(name, { shape: [out, inp], data: Float32Array.from({ length: out * inp }, () => (rng() * 2 - 1) * s) });
  };
  const norm = (name: string, n: number) =>
    t.set(name, { shape: [n], data: Float32Array.from({ length: n }, () => 0.8 + 0.4 * rng()) });
  t.set('model.embed_tokens.weight', {
    shape: [c.vocab, c.hidden],
    data: Float32Array.from({ length: c.vocab * c.hidden }, () => rng() * 2 - 1),
  });
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}.`;
    norm(`${p}input_layernorm.weight`, c.hidden);
    norm(`${p}post_attention_layernorm.weight`, c.hidden);
    lin(`${p}self_attn.q_proj.weight`, c.heads * c.headDim, c.hidden);
    lin(`${p}self_attn.k_proj.weight`, c.kvHeads * c.headDim, c.hidden);
    lin(`${p}self_attn.v_proj.weight`, c.kvHeads * c.headDim, c.hidden);
    lin(`${p}self_attn.o_proj.weight`, c.hidden, c.heads * c.headDim);
    if (c.family === 'mixtral') {
      lin(`${p}block_sparse_moe.gate.weight`, c.experts, c.hidden);
      for (let e = 0; e < c.experts; e++) {
        lin(`${p}block_sparse_moe.experts.${e}.w1.weight`, c.intermediate, c.hidden);
        lin(`${p}block_sparse_moe.experts.${e}.w3.weight`, c.intermediate, c.hidden);
        lin(`${p}block_sparse_moe.experts.${e}.w2.weight`, c.hidden, c.intermediate);
      }
    } else {
      lin(`${p}mlp.gate_proj.weight`, c.intermediate, c.hidden);
      lin(`${p}mlp.up_proj.weight`, c.intermediate, c.hidden);
      lin(`${p}mlp.down_proj.weight`, c.hidden, c.intermediate);
    }
  }
  norm('model.norm.weight', c.hidden);
  if (!c.tieEmbeddings) lin('lm_head.weight', c.vocab, c.hidden);
  // what the other families add (biases, q/k norms, Qwen3-MoE's expert names), drawn after the rest
  for (const spec of requiredTensors(c)) {
    if (t.has(spec.name)) continue;
    if (spec.name.endsWith('.bias')) {
      const n = spec.shape[0];
      t.set(spec.name, { shape: [n], data: Float32Array.from({ length: n }, () => rng() - 0.5) });
    } else if (spec.shape.length === 1) norm(spec.name, spec.shape[0]);
    else lin(spec.name, spec.shape[0], spec.shape[1]);
  }
  return new MapStore(t);
}

const MIXTRAL: ModelConfig = {
  name: 'mixtral-test',
  family: 'mixtral',
  hidden: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  intermediate: 48,
  experts: 4,
  expertsPerToken: 2,
  vocab: 64,
  ropeTheta: 1e6,
  rmsNormEps: 1e-5,
  maxPositions: 64,
  tieEmbeddings: false,
  slidingWindow: null,
  ropeScaling: null,
  attentionBias: false,
  qkNorm: false,
  normTopK: true,
};
const LLAMA: ModelConfig = {
  ...MIXTRAL,
  name: 'llama-test',
  family: 'llama',
  heads: 4,
  kvHeads: 1,
  experts: 1,
  expertsPerToken: 1,
  ropeTheta: 1e4,
  tieEmbeddings: true,
};
const MISTRAL: ModelConfig = {
  ...LLAMA,
  name: 'mistral-test',
  family: 'mistral',
  kvHeads: 2,
  tieEmbeddings: false,
  slidingWindow: 3,
};
// head_dim 8 at theta 5e5 with original context 512: frequency 0 is high, 1 smooth, 2 and 3 low
const LLAMA3: ModelConfig = {
  ...LLAMA,
  name: 'llama3-test',
  tieEmbeddings: false,
  ropeTheta: 500000,
  ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 512 },
};
const QWEN2: ModelConfig = { ...LLAMA, name: 'qwen2-test', family: 'qwen2', kvHeads: 2, attentionBias: true };
// heads x head_dim = 64 != hidden 32
const QWEN3: ModelConfig = { ...LLAMA, name: 'qwen3-test', family: 'qwen3', headDim: 16, qkNorm: true };
const QWEN3_MOE: ModelConfig = {
  ...QWEN3,
  name: 'qwen3-moe-test',
  family: 'qwen3_moe',
  kvHeads: 2,
  intermediate: 24,
  experts: 4,
  expertsPerToken: 2,
  normTopK: false,
  tieEmbeddings: false,
};

// ---- an independent, deliberately naive model: no cache, everything recomputed in doubles -------
function naiveLogits(c: ModelConfig, w: WeightStore, ids: number[]): Float64Array {
  const T = ids.length,
    H = c.hidden,
    hd = c.headDim;
  const lin = (x: number[][], name: string) => {
    const W = w.full(name);
    const [out, inp] = w.shape(name);
    return x.map((row) => Array.from({ length: out }, (_, j) => row.reduce((s, v, k) => s + v * W[j * inp + k], 0)));
  };
  const norm = (x: number[][], name: string) => {
    const g = w.full(name);
    return x.map((row) => {
      const r = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / H + c.rmsNormEps);
      return row.map((v, k) => v * r * g[k]);
    });
  };
  // Llama 3 scaling written out per band, as in transformers' _compute_llama3_parameters
  const invFreq = (i: number) => {
    const inv = 1 / c.ropeTheta ** ((2 * i) / hd);
    const sc = c.ropeScaling;
    if (sc === null) return inv;
    const wavelen = (2 * Math.PI) / inv;
    if (wavelen < sc.originalMaxPositions / sc.highFreqFactor) return inv;
    if (wavelen > sc.originalMaxPositions / sc.lowFreqFactor) return inv / sc.factor;
    const smooth = (sc.originalMaxPositions / wavelen - sc.lowFreqFactor) / (sc.highFreqFactor - sc.lowFreqFactor);
    return ((1 - smooth) * inv) / sc.factor + smooth * inv;
  };
  const bias = (x: number[][], name: string) => {
    if (!c.attentionBias) return x;
    const b = w.full(name);
    return x.map((row) => row.map((v, j) => v + b[j]));
  };
  const headNorm = (x: number[][], nh: number, name: string) => {
    if (!c.qkNorm) return x;
    const g = w.full(name);
    return x.map((row) =>
      row.map((v, j) => {
        const h = Math.floor(j / hd);
        const head = row.slice(h * hd, (h + 1) * hd);
        return (v / Math.sqrt(head.reduce((s, e) => s + e * e, 0) / hd + c.rmsNormEps)) * g[j % hd];
      }),
    );
  };
  const rope = (x: number[][], nh: number) =>
    x.map((row, p) => {
      const o = row.slice();
      for (let h = 0; h < nh; h++)
        for (let d = 0; d < hd; d++) {
          const i = d % (hd / 2);
          const ang = p * invFreq(i);
          const rot = d < hd / 2 ? -row[h * hd + d + hd / 2] : row[h * hd + d - hd / 2];
          o[h * hd + d] = row[h * hd + d] * Math.cos(ang) + rot * Math.sin(ang);
        }
      return o;
    });
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const mlp = (x: number[][], g: string, u: string, d: string) => {
    const a = lin(x, g),
      b = lin(x, u);
    return lin(
      a.map((row, r) => row.map((v, k) => silu(v) * b[r][k])),
      d,
    );
  };
  const E = w.full('model.embed_tokens.weight');
  let x = ids.map((id) => Array.from(E.subarray(id * H, (id + 1) * H)));
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    const n = norm(x, `${p}input_layernorm.weight`);
    const a = `${p}self_attn.`;
    const q = rope(
      headNorm(bias(lin(n, `${a}q_proj.weight`), `${a}q_proj.bias`), c.heads, `${a}q_norm.weight`),
      c.heads,
    );
    const k = rope(
      headNorm(bias(lin(n, `${a}k_proj.weight`), `${a}k_proj.bias`), c.kvHeads, `${a}k_norm.weight`),
      c.kvHeads,
    );
    const v = bias(lin(n, `${a}v_proj.weight`), `${a}v_proj.bias`);
    const attn = x.map(() => new Array(c.heads * hd).fill(0));
    for (let t = 0; t < T; t++)
      for (let h = 0; h < c.heads; h++) {
        const g = Math.floor(h / (c.heads / c.kvHeads));
        const js = [...Array(t + 1).keys()].filter((j) => c.slidingWindow == null || j > t - c.slidingWindow);
        const s = js.map(
          (j) => q[t].slice(h * hd, (h + 1) * hd).reduce((a, qv, d) => a + qv * k[j][g * hd + d], 0) / Math.sqrt(hd),
        );
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        js.forEach((j, jj) => {
          for (let d = 0; d < hd; d++) attn[t][h * hd + d] += (e[jj] / z) * v[j][g * hd + d];
        });
      }
    const o = lin(attn, `${p}self_attn.o_proj.weight`);
    const h1 = x.map((row, t) => row.map((vv, d) => vv + o[t][d]));
    const n2 = norm(h1, `${p}post_attention_layernorm.weight`);
    let f: number[][];
    if (c.family === 'mixtral' || c.family === 'qwen3_moe') {
      const qwen = c.family === 'qwen3_moe';
      const logits = lin(n2, qwen ? `${p}mlp.gate.weight` : `${p}block_sparse_moe.gate.weight`);
      f = n2.map(() => new Array(H).fill(0));
      n2.forEach((row, t) => {
        const m = Math.max(...logits[t]);
        const pr = logits[t].map((v) => Math.exp(v - m));
        const z = pr.reduce((a, b) => a + b, 0);
        const top = pr
          .map((v, i) => [v / z, i])
          .sort((a, b) => b[0] - a[0] || a[1] - b[1])
          .slice(0, c.expertsPerToken);
        const tot = c.normTopK ? top.reduce((a, b) => a + b[0], 0) : 1;
        for (const [pw, e] of top) {
          const pe = qwen ? `${p}mlp.experts.${e}.` : `${p}block_sparse_moe.experts.${e}.`;
          const y = qwen
            ? mlp([row], `${pe}gate_proj.weight`, `${pe}up_proj.weight`, `${pe}down_proj.weight`)[0]
            : mlp([row], `${pe}w1.weight`, `${pe}w3.weight`, `${pe}w2.weight`)[0];
          for (let d = 0; d < H; d++) f[t][d] += (pw / tot) * y[d];
        }
      });
    } else {
      f = mlp(n2, `${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`, `${p}mlp.down_proj.weight`);
    }
    x = h1.map((row, t) => row.map((vv, d) => vv + f[t][d]));
  }
  const last = norm([x[T - 1]], 'model.norm.weight');
  return Float64Array.from(lin(last, c.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight')[0]);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const PROMPT = [3, 17, 42, 5, 63, 0, 8];

describe.each([
  ['mixtral', MIXTRAL, 101],
  ['llama', LLAMA, 202],
  ['mistral (sliding window 3)', MISTRAL, 303],
  ['llama 3 (llama3 rope scaling)', LLAMA3, 404],
  ['qwen2 (q/k/v biases)', QWEN2, 505],
  ['qwen3 (q/k norm, head_dim 16)', QWEN3, 606],
  ['qwen3-moe (norm_topk_prob false)', QWEN3_MOE, 707],
] as const)('runtime reference on a tiny %s', (_name, cfg, seed) => {
  const store = randomStore(cfg, seed);

  it('runtime - reference matches an independent naive model (greedy tokens and logits)', () => {
    const res = referenceGenerate(cfg, store, PROMPT, 5);
    expect(res.tokens).toHaveLength(5);
    expect(res.allLogits).toHaveLength(5);
    const seq = [...PROMPT];
    for (let t = 0; t < 5; t++) {
      const want = naiveLogits(cfg, store, seq);
      expect(maxDiff(res.allLogits[t], want)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(want)));
      seq.push(res.tokens[t]);
    }
    expect(res.finalLogits).toBe(res.allLogits[4]);
  });

  it('runtime - reference is deterministic and its tokens are in range', () => {
    const a = referenceGenerate(cfg, store, PROMPT, 8);
    const b = referenceGenerate(cfg, randomStore(cfg, seed), PROMPT, 8);
    expect(b.tokens).toEqual(a.tokens);
    expect(Array.from(b.finalLogits)).toEqual(Array.from(a.finalLogits));
    for (const t of a.tokens) {
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(0);
      expect(t).toBeLessThan(cfg.vocab);
    }
    expect(a.finalLogits).toHaveLength(cfg.vocab);
  });

  it('runtime - prefill at once, in chunks, or one token at a time gives the same logits', () => {
    const whole = referenceGenerate(cfg, store, PROMPT, 4);
    for (const chunk of [1, 3]) {
      const r = referenceGenerate(cfg, store, PROMPT, 4, { prefillChunk: chunk });
      expect(r.tokens).toEqual(whole.tokens);
      for (let t = 0; t < 4; t++) {
        expect(maxDiff(r.allLogits[t], whole.allLogits[t])).toBeLessThanOrEqual(
          1e-5 * Math.max(1, maxAbs(whole.allLogits[t])),
        );
      }
      // stronger: the kernels make a row's numbers independent of its batch, so they are bit-identical
      expect(Array.from(r.allLogits[0])).toEqual(Array.from(whole.allLogits[0]));
    }
    // the lower-level model: per-row logits of a prefill equal step-by-step forwards
    const m = new ReferenceModel(cfg, store, { capacity: 16 });
    const all = m.forward(
      PROMPT,
      PROMPT.map((_, i) => i),
      true,
    );
    m.reset();
    PROMPT.forEach((id, i) => {
      const row = m.forward([id], [i]);
      expect(maxDiff(row, all.subarray(i * cfg.vocab, (i + 1) * cfg.vocab))).toBeLessThanOrEqual(
        1e-5 * Math.max(1, maxAbs(row)),
      );
    });
  });
});

describe('runtime reference errors', () => {
  const store = randomStore(LLAMA, 1);
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof RackemuError ? e.code : String(e);
    }
    return 'no error';
  };
  it('runtime - reference rejects bad prompts and lengths with RACKEMU_ERR_GENERATE_OPTION', () => {
    expect(code(() => referenceGenerate(LLAMA, store, [], 1))).toBe('RACKEMU_ERR_GENERATE_OPTION');
    expect(code(() => referenceGenerate(LLAMA, store, [64], 1))).toBe('RACKEMU_ERR_GENERATE_OPTION');
    expect(code(() => referenceGenerate(LLAMA, store, [1.5], 1))).toBe('RACKEMU_ERR_GENERATE_OPTION');
    expect(code(() => referenceGenerate(LLAMA, store, [1], -1))).toBe('RACKEMU_ERR_GENERATE_OPTION');
    expect(code(() => referenceGenerate(LLAMA, store, [1], 64))).toBe('RACKEMU_ERR_GENERATE_OPTION');
    expect(code(() => referenceGenerate(LLAMA, store, [1], 1, { prefillChunk: 0 }))).toBe(
      'RACKEMU_ERR_GENERATE_OPTION',
    );
    const zero = referenceGenerate(LLAMA, store, [1, 2], 0);
    expect(zero.tokens).toEqual([]);
    expect(zero.finalLogits).toHaveLength(LLAMA.vocab);
  });
});
