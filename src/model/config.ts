/**
 * Model architecture description shared by the compiler, the reference and the chip runtime.
 * One shape covers the Mixtral / Mistral / Llama (2 and 3.x) / Qwen2 / Qwen3 / Qwen3-MoE families:
 * a decoder-only transformer with RMSNorm, rotary embeddings (Hugging Face rotate-half convention,
 * optionally Llama 3's frequency scaling), grouped-query attention (optionally with q/k/v biases or
 * per-head q/k RMSNorm) and a SwiGLU feed-forward that is either dense (experts = 1) or a top-k
 * softmax-routed mixture of experts.
 */

export type ModelFamily = 'mixtral' | 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'qwen3_moe';

/**
 * Llama 3's RoPE frequency scaling (transformers' rope_type "llama3"): low frequencies are divided
 * by `factor`, high frequencies kept, the band between interpolated (see ropeInvFreq).
 */
export interface Llama3RopeScaling {
  readonly type: 'llama3';
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  /** The context length the model was pre-trained at (original_max_position_embeddings). */
  readonly originalMaxPositions: number;
}

/** RoPE scaling; null = plain RoPE. */
export type RopeScaling = Llama3RopeScaling;

export interface ModelConfig {
  /** Display name: a built-in name or the folder it was read from. */
  readonly name: string;
  readonly family: ModelFamily;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** FFN inner width (per expert for MoE). */
  readonly intermediate: number;
  /** 1 for a dense FFN. */
  readonly experts: number;
  /** Experts selected per token (1 for dense). */
  readonly expertsPerToken: number;
  readonly vocab: number;
  readonly ropeTheta: number;
  readonly rmsNormEps: number;
  readonly maxPositions: number;
  readonly tieEmbeddings: boolean;
  /** Mistral's sliding-window attention span; null = full causal attention. */
  readonly slidingWindow: number | null;
  /** Scaling of RoPE's inverse frequencies (Llama 3.x); null = plain RoPE. */
  readonly ropeScaling: RopeScaling | null;
  /** q/k/v projections carry biases [heads*headDim] / [kvHeads*headDim] (Qwen2); o_proj never does. */
  readonly attentionBias: boolean;
  /** Per-head RMSNorm of q and k (weights [headDim]) after the projection, before RoPE (Qwen3). */
  readonly qkNorm: boolean;
  /** MoE: the top-k routing weights are renormalised to sum to 1 (Mixtral; Qwen3-MoE's norm_topk_prob). */
  readonly normTopK: boolean;
}

/** True when the model's FFN is routed experts (Mixtral's block_sparse_moe, Qwen3-MoE's mlp.experts). */
export function usesMoe(config: ModelConfig): boolean {
  return config.family === 'mixtral' || config.family === 'qwen3_moe' || config.experts > 1;
}

/** Weight storage dtypes the compiler places and the runtime dequantises. */
export type WeightDtype = 'bf16' | 'fp16' | 'int8' | 'fp8';
export const WEIGHT_DTYPES: readonly WeightDtype[] = ['bf16', 'fp16', 'int8', 'fp8'];

export function bytesPerParam(dtype: WeightDtype): number {
  return dtype === 'bf16' || dtype === 'fp16' ? 2 : 1;
}

export function isMoe(m: ModelConfig): boolean {
  return m.experts > 1;
}

/** Parameter counts, derived from the shapes (used in reports and tested against FACTS.md). */
export interface ParamCounts {
  /** q/k/v/o projections and their biases. */
  readonly attentionPerLayer: number;
  readonly expertPerLayer: number;
  readonly routerPerLayer: number;
  readonly normsPerLayer: number;
  readonly embedding: number;
  readonly lmHead: number;
  readonly total: number;
  /** Parameters touched per token (top-k experts only). */
  readonly active: number;
}

export function paramCounts(m: ModelConfig): ParamCounts {
  const q = m.heads * m.headDim;
  const kv = m.kvHeads * m.headDim;
  const bias = m.attentionBias ? q + 2 * kv : 0;
  const attentionPerLayer = m.hidden * (q + 2 * kv) + q * m.hidden + bias;
  const expertPerLayer = 3 * m.hidden * m.intermediate;
  const routerPerLayer = isMoe(m) ? m.experts * m.hidden : 0;
  // input and post-attention RMSNorm, plus Qwen3's q_norm and k_norm
  const normsPerLayer = 2 * m.hidden + (m.qkNorm ? 2 * m.headDim : 0);
  const embedding = m.vocab * m.hidden;
  const lmHead = m.tieEmbeddings ? 0 : m.vocab * m.hidden;
  const perLayer = attentionPerLayer + m.experts * expertPerLayer + routerPerLayer + normsPerLayer;
  const activePerLayer = attentionPerLayer + m.expertsPerToken * expertPerLayer + routerPerLayer + normsPerLayer;
  const total = m.layers * perLayer + embedding + lmHead + m.hidden;
  const active = m.layers * activePerLayer + embedding + lmHead + m.hidden;
  return { attentionPerLayer, expertPerLayer, routerPerLayer, normsPerLayer, embedding, lmHead, total, active };
}

/** Bytes of KV cache per token (all layers) at the given element size. */
export function kvBytesPerToken(m: ModelConfig, elementBytes: number): number {
  return 2 * m.layers * m.kvHeads * m.headDim * elementBytes;
}
