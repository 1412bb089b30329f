/**
 * The Hugging Face tensor names and shapes a model of a given config consists of (the naming
 * contract of weights.ts). Safetensors folders are validated against this list and the seeded
 * random store generates exactly these tensors.
 */

import { usesMoe, type ModelConfig } from './config.js';

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

export const EMBED_TOKENS = 'model.embed_tokens.weight';
export const LM_HEAD = 'lm_head.weight';
export const FINAL_NORM = 'model.norm.weight';

/** The tensors of one expert's SwiGLU (or the dense MLP's): gate (w1), up (w3), down (w2). */
export interface ExpertTensorNames {
  readonly gate: string;
  readonly up: string;
  readonly down: string;
}

/**
 * The router of layer `layer`'s MoE FFN. Naming follows the family, not the expert count: a Mixtral
 * checkpoint with one expert still uses block_sparse_moe names (that is what transformers'
 * MixtralForCausalLM saves); Qwen3-MoE keeps the router and experts under mlp.
 */
export function routerTensorName(config: ModelConfig, layer: number): string {
  return config.family === 'qwen3_moe'
    ? `model.layers.${layer}.mlp.gate.weight`
    : `model.layers.${layer}.block_sparse_moe.gate.weight`;
}

/** The FFN tensors of `expert` in `layer` (expert 0 names the dense MLP of a dense model). */
export function expertTensorNames(config: ModelConfig, layer: number, expert: number): ExpertTensorNames {
  const p = `model.layers.${layer}`;
  if (!usesMoe(config)) {
    return { gate: `${p}.mlp.gate_proj.weight`, up: `${p}.mlp.up_proj.weight`, down: `${p}.mlp.down_proj.weight` };
  }
  if (config.family === 'qwen3_moe') {
    const x = `${p}.mlp.experts.${expert}`;
    return { gate: `${x}.gate_proj.weight`, up: `${x}.up_proj.weight`, down: `${x}.down_proj.weight` };
  }
  const x = `${p}.block_sparse_moe.experts.${expert}`;
  return { gate: `${x}.w1.weight`, up: `${x}.w3.weight`, down: `${x}.w2.weight` };
}

/** The attention tensors of `layer`; biases and q/k norms exist only when the config says so. */
export const attentionTensorName = {
  q: (l: number) => `model.layers.${l}.self_attn.q_proj.weight`,
  k: (l: number) => `model.layers.${l}.self_attn.k_proj.weight`,
  v: (l: number) => `model.layers.${l}.self_attn.v_proj.weight`,
  o: (l: number) => `model.layers.${l}.self_attn.o_proj.weight`,
  qBias: (l: number) => `model.layers.${l}.self_attn.q_proj.bias`,
  kBias: (l: number) => `model.layers.${l}.self_attn.k_proj.bias`,
  vBias: (l: number) => `model.layers.${l}.self_attn.v_proj.bias`,
  qNorm: (l: number) => `model.layers.${l}.self_attn.q_norm.weight`,
  kNorm: (l: number) => `model.layers.${l}.self_attn.k_norm.weight`,
};

/** Every tensor the model needs, in checkpoint order (embedding, layers, final norm, lm_head). */
export function requiredTensors(config: ModelConfig): TensorSpec[] {
  const { hidden, heads, kvHeads, headDim, intermediate, experts, vocab } = config;
  const a = attentionTensorName;
  const out: TensorSpec[] = [{ name: EMBED_TOKENS, shape: [vocab, hidden] }];
  for (let i = 0; i < config.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [hidden] },
      { name: a.q(i), shape: [heads * headDim, hidden] },
      { name: a.k(i), shape: [kvHeads * headDim, hidden] },
      { name: a.v(i), shape: [kvHeads * headDim, hidden] },
    );
    if (config.attentionBias) {
      out.push(
        { name: a.qBias(i), shape: [heads * headDim] },
        { name: a.kBias(i), shape: [kvHeads * headDim] },
        { name: a.vBias(i), shape: [kvHeads * headDim] },
      );
    }
    if (config.qkNorm) out.push({ name: a.qNorm(i), shape: [headDim] }, { name: a.kNorm(i), shape: [headDim] });
    out.push(
      { name: a.o(i), shape: [hidden, heads * headDim] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [hidden] },
    );
    if (usesMoe(config)) out.push({ name: routerTensorName(config, i), shape: [experts, hidden] });
    for (let e = 0; e < experts; e++) {
      const x = expertTensorNames(config, i, e);
      const gate = { name: x.gate, shape: [intermediate, hidden] };
      const up = { name: x.up, shape: [intermediate, hidden] };
      const down = { name: x.down, shape: [hidden, intermediate] };
      // the order transformers saves: Mixtral's w1, w2, w3; an MLP's gate, up, down
      out.push(...(config.family === 'mixtral' ? [gate, down, up] : [gate, up, down]));
    }
  }
  out.push({ name: FINAL_NORM, shape: [hidden] });
  if (!config.tieEmbeddings) out.push({ name: LM_HEAD, shape: [vocab, hidden] });
  return out;
}

/** The tensor to read for the output projection: lm_head.weight, or the embedding when tied. */
export function lmHeadName(config: ModelConfig): string {
  return config.tieEmbeddings ? EMBED_TOKENS : LM_HEAD;
}

/**
 * Checkpoint entries that are not weights and are recomputed from the config (older transformers
 * versions saved the rotary inverse frequencies as a buffer): ignored wherever they appear.
 */
export function isIgnoredTensor(name: string): boolean {
  return /(^|\.)rotary_emb\.inv_freq$/.test(name);
}
