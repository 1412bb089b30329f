import { describe, expect, it } from 'vitest';
import { BUILTIN_MODELS, TINY_WEIGHT_SEED } from '../src/model/builtin.js';
import type { WeightDtype } from '../src/model/config.js';
import { createRandomWeights } from '../src/model/random-weights.js';
import { lmHeadName, requiredTensors } from '../src/model/tensors.js';
import { expectCode } from './model-fixtures.js';

const tiny = BUILTIN_MODELS['mixtral-tiny'];
const DTYPES: readonly WeightDtype[] = ['bf16', 'fp16', 'int8', 'fp8'];

function std(a: Float32Array): number {
  let m = 0;
  for (const v of a) m += v;
  m /= a.length;
  let s = 0;
  for (const v of a) s += (v - m) ** 2;
  return Math.sqrt(s / a.length);
}

describe('random-weights - determinism', () => {
  it('gives identical values across stores and calls', () => {
    const a = createRandomWeights(tiny, TINY_WEIGHT_SEED, 'bf16');
    const b = createRandomWeights(tiny, TINY_WEIGHT_SEED, 'bf16');
    for (const name of [
      'model.embed_tokens.weight',
      'model.layers.3.block_sparse_moe.experts.5.w2.weight',
      'model.norm.weight',
    ]) {
      expect(a.full(name)).toEqual(b.full(name));
      expect(a.full(name)).toEqual(a.full(name));
    }
  });

  it('differs between tensor names and between seeds', () => {
    const a = createRandomWeights(tiny, TINY_WEIGHT_SEED, 'fp16');
    const w1 = a.full('model.layers.0.block_sparse_moe.experts.0.w1.weight');
    const w3 = a.full('model.layers.0.block_sparse_moe.experts.0.w3.weight');
    const w1b = a.full('model.layers.1.block_sparse_moe.experts.0.w1.weight');
    let same = 0;
    for (let i = 0; i < w1.length; i++) if (w1[i] === w3[i] || w1[i] === w1b[i]) same++;
    expect(same).toBeLessThan(w1.length / 100);
    const other = createRandomWeights(tiny, TINY_WEIGHT_SEED + 1, 'fp16').full(
      'model.layers.0.block_sparse_moe.experts.0.w1.weight',
    );
    expect(other).not.toEqual(w1);
  });
});

describe('random-weights - slices', () => {
  it('rows and cols equal the matching parts of full() for every storage dtype', () => {
    for (const dtype of DTYPES) {
      const s = createRandomWeights(tiny, TINY_WEIGHT_SEED, dtype);
      const name = 'model.layers.2.block_sparse_moe.experts.1.w2.weight'; // [64, 128]
      const [rows, cols] = s.shape(name);
      expect([rows, cols]).toEqual([64, 128]);
      const full = s.full(name);
      expect(s.rows(name, 5, 17)).toEqual(full.slice(5 * cols, 17 * cols));
      const c = s.cols(name, 30, 70);
      for (let r = 0; r < rows; r++)
        expect(c.subarray(r * 40, (r + 1) * 40)).toEqual(full.slice(r * cols + 30, r * cols + 70));
      const norm = 'model.layers.2.input_layernorm.weight';
      expect(s.rows(norm, 10, 20)).toEqual(s.full(norm).slice(10, 20));
      expect(s.rows(name, 3, 3).length).toBe(0);
      expect(() => s.rows(name, 0, 65)).toThrow(RangeError);
      expect(() => s.cols(norm, 0, 1)).toThrow(RangeError);
    }
  });

  it('stays lazy for full-size models: a slice of Mixtral 8x7B costs only that slice', () => {
    const big = createRandomWeights(BUILTIN_MODELS['mixtral-8x7b'], TINY_WEIGHT_SEED, 'bf16');
    expect(big.shape('model.layers.31.block_sparse_moe.experts.7.w1.weight')).toEqual([14336, 4096]);
    const r = big.rows('model.layers.31.block_sparse_moe.experts.7.w1.weight', 14000, 14002);
    expect(r.length).toBe(2 * 4096);
    expect(std(r)).toBeGreaterThan(0.01);
  });
});

describe('random-weights - names and distribution', () => {
  it('has exactly the required tensors and reports missing ones with a coded error', () => {
    const s = createRandomWeights(tiny, 1, 'bf16');
    for (const t of requiredTensors(tiny)) expect(s.shape(t.name)).toEqual(t.shape);
    expect(s.has('lm_head.weight')).toBe(true);
    expect(s.has('model.layers.8.input_layernorm.weight')).toBe(false);
    const e = expectCode(() => s.shape('model.layers.8.input_layernorm.weight'), 'RACKEMU_ERR_SAFETENSORS_MISSING');
    expect(e.message).toContain('model.layers.8.input_layernorm.weight');
    const tied = createRandomWeights({ ...tiny, tieEmbeddings: true }, 1, 'bf16');
    expect(tied.has('lm_head.weight')).toBe(false);
    expect(tied.has(lmHeadName({ ...tiny, tieEmbeddings: true }))).toBe(true);
  });

  it('uses near-1 norm weights and fan-in scaled matrices', () => {
    const s = createRandomWeights(tiny, TINY_WEIGHT_SEED, 'bf16');
    const norm = s.full('model.norm.weight');
    for (const v of norm) expect(Math.abs(v - 1)).toBeLessThanOrEqual(0.1 + 1e-2);
    expect(std(norm)).toBeGreaterThan(0.02);
    expect(std(s.full('model.layers.0.self_attn.q_proj.weight'))).toBeCloseTo(1 / 8, 2);
    expect(std(s.full('model.layers.0.block_sparse_moe.experts.0.w2.weight'))).toBeCloseTo(1 / Math.sqrt(128), 2);
    expect(std(s.full('model.embed_tokens.weight'))).toBeCloseTo(1, 1);
  });

  it('gives mixtral-tiny well-spread logits without ties', () => {
    const s = createRandomWeights(tiny, TINY_WEIGHT_SEED, 'bf16');
    const emb = s.full('model.embed_tokens.weight');
    const head = s.full('lm_head.weight');
    const h = tiny.hidden;
    for (const token of [0, 17, 255]) {
      const x = emb.subarray(token * h, (token + 1) * h);
      const rms = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / h);
      const logits = new Float32Array(tiny.vocab);
      for (let v = 0; v < tiny.vocab; v++) {
        let acc = 0;
        for (let i = 0; i < h; i++) acc += head[v * h + i] * (x[i] / rms);
        logits[v] = acc;
      }
      expect(std(logits)).toBeGreaterThan(1.2);
      expect(std(logits)).toBeLessThan(4);
      const sorted = Array.from(logits).sort((a, b) => b - a);
      expect(sorted[0] - sorted[1]).toBeGreaterThan(0);
    }
  });
});

describe('random-weights - model families', () => {
  const layer0 = (name: string) =>
    requiredTensors(BUILTIN_MODELS[name])
      .filter((t) => t.name.startsWith('model.layers.0.'))
      .map((t) => `${t.name.slice('model.layers.0.'.length)} ${t.shape.join('x')}`);

  it('tensors - each family names its layer tensors as transformers saves them', () => {
    expect(layer0('qwen2-tiny')).toEqual(
      expect.arrayContaining([
        'self_attn.q_proj.bias 64',
        'self_attn.k_proj.bias 32',
        'self_attn.v_proj.bias 32',
        'mlp.gate_proj.weight 128x64',
      ]),
    );
    expect(layer0('qwen2-tiny').some((n) => n.startsWith('self_attn.o_proj.bias'))).toBe(false);
    // qwen3: q is heads x head_dim = 128 wide while hidden is 64
    expect(layer0('qwen3-tiny')).toEqual(
      expect.arrayContaining([
        'self_attn.q_proj.weight 128x64',
        'self_attn.o_proj.weight 64x128',
        'self_attn.q_norm.weight 32',
        'self_attn.k_norm.weight 32',
      ]),
    );
    const moe = layer0('qwen3-moe-tiny');
    expect(moe).toEqual(
      expect.arrayContaining([
        'mlp.gate.weight 8x64',
        'mlp.experts.7.gate_proj.weight 32x64',
        'mlp.experts.7.up_proj.weight 32x64',
        'mlp.experts.7.down_proj.weight 64x32',
      ]),
    );
    expect(moe.some((n) => n.startsWith('block_sparse_moe') || n.startsWith('mlp.gate_proj'))).toBe(false);
    expect(layer0('llama3-tiny').some((n) => n.includes('bias') || n.includes('_norm'))).toBe(false);
  });

  it('random-weights - biases are small and centred, q/k norms near 1', () => {
    const w = createRandomWeights(BUILTIN_MODELS['qwen2-tiny'], TINY_WEIGHT_SEED, 'bf16');
    const b = w.full('model.layers.1.self_attn.q_proj.bias');
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(0.5);
    expect(std(b)).toBeGreaterThan(0.2);
    const n = createRandomWeights(BUILTIN_MODELS['qwen3-tiny'], TINY_WEIGHT_SEED, 'bf16').full(
      'model.layers.0.self_attn.k_norm.weight',
    );
    for (const v of n) expect(Math.abs(v - 1)).toBeLessThanOrEqual(0.1);
  });
});
