import type { ModelConfig } from './config.js';

/**
 * Built-in architectures. Shapes are those of the published Hugging Face config.json files
 * (FACTS.md, "Models", grade A); `mixtral-tiny` is the same architecture at toy size with seeded
 * random weights, small enough to run with real numerics on hundreds of emulated chips.
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
  },
  // Same architecture, toy dimensions: 8 layers so that a shrunk-SRAM topology spreads it over hundreds of chips.
  'mixtral-tiny': {
    name: 'mixtral-tiny',
    family: 'mixtral',
    hidden: 64,
    layers: 8,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    intermediate: 128,
    experts: 8,
    expertsPerToken: 2,
    vocab: 256,
    ropeTheta: 1e6,
    rmsNormEps: 1e-5,
    maxPositions: 512,
    tieEmbeddings: false,
    slidingWindow: null,
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
  },
};

/** Seed of mixtral-tiny's random weights: fixed so that every run and every test sees the same model. */
export const TINY_WEIGHT_SEED = 20240229;
