import type { Llama3RopeScaling, ModelConfig } from './config.js';

/** rope_scaling of every Llama 3.1 config.json (rope_type llama3). */
const LLAMA_3_1_ROPE: Llama3RopeScaling = {
  type: 'llama3',
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
};

/** Llama 3.1: plain (un-biased) attention, dense SwiGLU, Llama 3 RoPE scaling. */
function llama31(name: string, hidden: number, layers: number, heads: number, intermediate: number): ModelConfig {
  return {
    name,
    family: 'llama',
    hidden,
    layers,
    heads,
    kvHeads: 8,
    headDim: 128,
    intermediate,
    experts: 1,
    expertsPerToken: 1,
    vocab: 128256,
    ropeTheta: 500000,
    rmsNormEps: 1e-5,
    maxPositions: 131072,
    tieEmbeddings: false,
    slidingWindow: null,
    ropeScaling: LLAMA_3_1_ROPE,
    attentionBias: false,
    qkNorm: false,
    normTopK: false,
  };
}

/** Qwen3 / Qwen3-MoE: q/k norm, head_dim 128, vocab 151936, rope_theta 1e6, 40960 positions, untied. */
function qwen3(
  name: string,
  shape: Pick<ModelConfig, 'hidden' | 'layers' | 'heads' | 'kvHeads' | 'intermediate' | 'experts' | 'expertsPerToken'>,
): ModelConfig {
  const moe = shape.experts > 1;
  return {
    name,
    family: moe ? 'qwen3_moe' : 'qwen3',
    ...shape,
    headDim: 128,
    vocab: 151936,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    maxPositions: 40960,
    tieEmbeddings: false,
    slidingWindow: null,
    ropeScaling: null,
    attentionBias: false,
    qkNorm: true,
    normTopK: moe, // norm_topk_prob: true in both published MoE configs
  };
}

/** The common toy shape of the *-tiny built-ins: hidden 64, 4 heads, 2 kv heads, vocab 256. */
const TINY = {
  hidden: 64,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  intermediate: 128,
  experts: 1,
  expertsPerToken: 1,
  vocab: 256,
  ropeTheta: 1e6,
  rmsNormEps: 1e-6,
  maxPositions: 512,
  tieEmbeddings: false,
  slidingWindow: null,
  ropeScaling: null,
  attentionBias: false,
  qkNorm: false,
  normTopK: false,
} as const;

/**
 * Built-in architectures. Shapes are those of the published Hugging Face config.json files
 * (FACTS.md, "Models", grade A, for Mixtral / Llama-2 / Mistral; the others name their source
 * above the entry); `mixtral-tiny` and the other `*-tiny` entries are the same architectures at
 * toy size with seeded random weights, small enough to run with real numerics on many emulated chips.
 */
export const BUILTIN_MODELS: Readonly<Record<string, ModelConfig>> = {
  // mistralai/Mixtral-8x7B-v0.1 config.json
  'mixtral-8x7b': {
    name: 'mixtral-8x7b',
    family: 'mixtral',
    hidden: 4096,
    layers: 32,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    intermediate: 14336,
    experts: 8,
    expertsPerToken: 2,
    vocab: 32000,
    ropeTheta: 1e6,
    rmsNormEps: 1e-5,
    maxPositions: 32768,
    tieEmbeddings: false,
    slidingWindow: null,
    ropeScaling: null,
    attentionBias: false,
    qkNorm: false,
    normTopK: true,
  },
  // Same architecture, toy dimensions: 8 layers so that a shrunk-SRAM topology spreads it over hundreds of chips.
  'mixtral-tiny': {
    ...TINY,
    name: 'mixtral-tiny',
    family: 'mixtral',
    layers: 8,
    experts: 8,
    expertsPerToken: 2,
    rmsNormEps: 1e-5,
    normTopK: true,
  },
  // meta-llama/Llama-2-70b-hf config.json
  'llama-2-70b': {
    name: 'llama-2-70b',
    family: 'llama',
    hidden: 8192,
    layers: 80,
    heads: 64,
    kvHeads: 8,
    headDim: 128,
    intermediate: 28672,
    experts: 1,
    expertsPerToken: 1,
    vocab: 32000,
    ropeTheta: 1e4,
    rmsNormEps: 1e-5,
    maxPositions: 4096,
    tieEmbeddings: false,
    slidingWindow: null,
    ropeScaling: null,
    attentionBias: false,
    qkNorm: false,
    normTopK: false,
  },
  // mistralai/Mistral-7B-v0.1 config.json (sliding window 4096)
  'mistral-7b': {
    name: 'mistral-7b',
    family: 'mistral',
    hidden: 4096,
    layers: 32,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    intermediate: 14336,
    experts: 1,
    expertsPerToken: 1,
    vocab: 32000,
    ropeTheta: 1e4,
    rmsNormEps: 1e-5,
    maxPositions: 32768,
    tieEmbeddings: false,
    slidingWindow: 4096,
    ropeScaling: null,
    attentionBias: false,
    qkNorm: false,
    normTopK: false,
  },
  // meta-llama/Llama-3.1-8B config.json (rope_scaling llama3: factor 8, low 1, high 4, original 8192)
  'llama-3.1-8b': llama31('llama-3.1-8b', 4096, 32, 32, 14336),
  // meta-llama/Llama-3.1-70B config.json
  'llama-3.1-70b': llama31('llama-3.1-70b', 8192, 80, 64, 28672),
  // meta-llama/Llama-3.1-405B config.json
  'llama-3.1-405b': llama31('llama-3.1-405b', 16384, 126, 128, 53248),
  // Qwen/Qwen3-32B config.json (64 heads x head_dim 128 = 8192, wider than hidden 5120)
  'qwen3-32b': qwen3('qwen3-32b', {
    hidden: 5120,
    layers: 64,
    heads: 64,
    kvHeads: 8,
    intermediate: 25600,
    experts: 1,
    expertsPerToken: 1,
  }),
  // Qwen/Qwen3-30B-A3B config.json (intermediate = moe_intermediate_size; its intermediate_size 6144 is unused)
  'qwen3-30b-a3b': qwen3('qwen3-30b-a3b', {
    hidden: 2048,
    layers: 48,
    heads: 32,
    kvHeads: 4,
    intermediate: 768,
    experts: 128,
    expertsPerToken: 8,
  }),
  // Qwen/Qwen3-235B-A22B config.json (moe_intermediate_size 1536; intermediate_size 12288 unused)
  'qwen3-235b-a22b': qwen3('qwen3-235b-a22b', {
    hidden: 4096,
    layers: 94,
    heads: 64,
    kvHeads: 4,
    intermediate: 1536,
    experts: 128,
    expertsPerToken: 8,
  }),
  // Toy Llama 3: theta 500000 and original context 64 put head_dim 16's frequencies in all three bands
  'llama3-tiny': {
    ...TINY,
    name: 'llama3-tiny',
    family: 'llama',
    ropeTheta: 500000,
    rmsNormEps: 1e-5,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 },
  },
  // Toy Qwen2.5: q/k/v biases, tied embeddings (as the small Qwen2.5 checkpoints)
  'qwen2-tiny': { ...TINY, name: 'qwen2-tiny', family: 'qwen2', attentionBias: true, tieEmbeddings: true },
  // Toy Qwen3: q/k norm, heads x head_dim = 128 != hidden 64
  'qwen3-tiny': { ...TINY, name: 'qwen3-tiny', family: 'qwen3', headDim: 32, qkNorm: true },
  // Toy Qwen3-MoE: 8 experts of width 32, top-2, renormalised like the published configs
  'qwen3-moe-tiny': {
    ...TINY,
    name: 'qwen3-moe-tiny',
    family: 'qwen3_moe',
    headDim: 32,
    qkNorm: true,
    intermediate: 32,
    experts: 8,
    expertsPerToken: 2,
    normTopK: true,
  },
};

/** Seed of mixtral-tiny's random weights: fixed so that every run and every test sees the same model. */
export const TINY_WEIGHT_SEED = 20240229;
