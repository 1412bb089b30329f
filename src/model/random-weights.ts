/**
 * Seeded random weights for any ModelConfig (mixtral-tiny's real numerics, and timing-fidelity runs
 * of full-size built-ins that never read values).
 *
 * Generator: counter-based. Element i of tensor `name` is a pure function of (seed, name, i):
 *   key = FNV-1a(seed ":" name), bits = fmix32(fmix32(imul(i, golden) ^ key) ^ key2 ^ hi(i)),
 * with murmur3's fmix32 finaliser. So nothing is ever materialised except what is asked for, any
 * row or column slice equals the same part of full() by construction. Within a tensor (< 2^32
 * elements) no two elements share a 32-bit draw (each step is a bijection of i), so weights, and
 * hence logits, have no systematic ties.
 *
 * Distribution: uniform, symmetric, never exactly 0, with standard deviation
 *   - Linear weights [out, in]: 1/sqrt(in) (fan-in scaling; ~0.016 at hidden 4096, close to HF's
 *     initializer_range of 0.02, and 0.125 at mixtral-tiny's hidden 64 so activations stay O(1));
 *   - lm_head: 2/sqrt(hidden), so logits of a unit-RMS final state have std ~2: well spread, a clear
 *     argmax, yet not one-hot after softmax;
 *   - embeddings: 1 (the residual stream starts at unit scale);
 *   - RMSNorm weights (including Qwen3's per-head q_norm/k_norm): 1 + U(-0.1, 0.1), near identity
 *     but not exactly 1;
 *   - biases (Qwen2's q/k/v_proj.bias): U(-0.5, 0.5), visible next to the O(1) projections without
 *     dominating them.
 * Values are float32 draws, then rounded through storeAs for the chosen storage dtype (StoredWeights).
 */

import type { ModelConfig, WeightDtype } from './config.js';
import { StoredWeights, type RawTensorSource } from './stored-weights.js';
import { EMBED_TOKENS, LM_HEAD, requiredTensors } from './tensors.js';
import type { WeightStore } from './weights.js';

function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  const bytes = new TextEncoder().encode(s);
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/** murmur3 32-bit finaliser: a bijection on 32-bit integers with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

interface TensorKey {
  readonly k1: number;
  readonly k2: number;
}

export function tensorKey(seed: number, name: string): TensorKey {
  const k1 = fnv1a32(`${seed}:${name}`);
  return { k1, k2: fmix32(k1 ^ 0x9e3779b9) };
}

/** Uniform in (-1, 1), symmetric and never 0: element i of the stream keyed by `key`. */
export function uniformAt(key: TensorKey, i: number): number {
  const lo = i >>> 0;
  const hi = Math.floor(i / 0x100000000);
  const x = fmix32(fmix32((Math.imul(lo, 0x9e3779b1) ^ key.k1) >>> 0) ^ key.k2 ^ Math.imul(hi, 0x27d4eb2f));
  return (x + 0.5) / 0x80000000 - 1;
}

interface Init {
  /** value = offset + amplitude * u, u uniform in (-1, 1). */
  readonly offset: number;
  readonly amplitude: number;
}

/** Amplitude of a uniform(-a, a) with the given standard deviation. */
const amplitudeFor = (std: number): number => std * Math.sqrt(3);

function initFor(name: string, shape: readonly number[], config: ModelConfig): Init {
  if (name.endsWith('.bias')) return { offset: 0, amplitude: 0.5 };
  if (shape.length === 1) return { offset: 1, amplitude: 0.1 };
  if (name === EMBED_TOKENS) return { offset: 0, amplitude: amplitudeFor(1) };
  if (name === LM_HEAD) return { offset: 0, amplitude: amplitudeFor(2 / Math.sqrt(config.hidden)) };
  return { offset: 0, amplitude: amplitudeFor(1 / Math.sqrt(shape[1])) };
}

class RandomSource implements RawTensorSource {
  private readonly specs: Map<string, { shape: readonly number[]; init: Init; key: TensorKey }>;

  constructor(
    private readonly config: ModelConfig,
    private readonly seed: number,
  ) {
    // Only names and shapes are built up front (a few thousand entries even for Llama-2-70B).
    this.specs = new Map(
      requiredTensors(config).map((t) => [
        t.name,
        { shape: t.shape, init: initFor(t.name, t.shape, config), key: tensorKey(seed, t.name) },
      ]),
    );
  }

  shape(name: string): readonly number[] | undefined {
    return this.specs.get(name)?.shape;
  }

  read(name: string, start: number, count: number): Float32Array {
    const spec = this.specs.get(name);
    if (spec === undefined) throw new RangeError(`random weights: no tensor ${name}`);
    const { offset, amplitude } = spec.init;
    const out = new Float32Array(count);
    for (let j = 0; j < count; j++) out[j] = offset + amplitude * uniformAt(spec.key, start + j);
    return out;
  }

  describe(): string {
    return `the seeded random weights of ${this.config.name} (seed ${this.seed})`;
  }
}

/** A lazy WeightStore of deterministic random weights for `config`, stored as `dtype`. */
export function createRandomWeights(config: ModelConfig, seed: number, dtype: WeightDtype): WeightStore {
  return new StoredWeights(new RandomSource(config, seed), dtype);
}
