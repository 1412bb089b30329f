/**
 * The contract between weight sources (safetensors folders, seeded random weights) and their users
 * (the single-process reference, the host agents that load chips' SRAM).
 *
 * Tensors use Hugging Face names and layouts (row-major; a Linear weight is [out_features, in_features]):
 *   model.embed_tokens.weight                         [vocab, hidden]
 *   model.layers.{i}.input_layernorm.weight           [hidden]
 *   model.layers.{i}.self_attn.q_proj.weight          [heads*headDim, hidden]
 *   model.layers.{i}.self_attn.k_proj.weight          [kvHeads*headDim, hidden]
 *   model.layers.{i}.self_attn.v_proj.weight          [kvHeads*headDim, hidden]
 *   model.layers.{i}.self_attn.o_proj.weight          [hidden, heads*headDim]
 *   model.layers.{i}.post_attention_layernorm.weight  [hidden]
 *   mixtral: model.layers.{i}.block_sparse_moe.gate.weight          [experts, hidden]
 *            model.layers.{i}.block_sparse_moe.experts.{e}.w1.weight [intermediate, hidden]  (gate)
 *            model.layers.{i}.block_sparse_moe.experts.{e}.w2.weight [hidden, intermediate]  (down)
 *            model.layers.{i}.block_sparse_moe.experts.{e}.w3.weight [intermediate, hidden]  (up)
 *   llama/mistral: model.layers.{i}.mlp.gate_proj.weight [intermediate, hidden]
 *                  model.layers.{i}.mlp.up_proj.weight   [intermediate, hidden]
 *                  model.layers.{i}.mlp.down_proj.weight [hidden, intermediate]
 *   model.norm.weight                                 [hidden]
 *   lm_head.weight                                    [vocab, hidden]  (absent when tie_word_embeddings)
 *
 * Values come back as float32 exactly as a chip would hold them after dequantisation for the
 * storage dtype chosen at compile time (bf16/fp16 rounding, int8/fp8 quantise-then-dequantise), so
 * the reference and the distributed run see bit-identical weights.
 */
export interface WeightStore {
  /** Shape of a tensor; throws ModelError RACKEMU_ERR_SAFETENSORS_MISSING if absent. */
  shape(name: string): readonly number[];
  has(name: string): boolean;
  /** Rows [r0, r1) of a 1-D or 2-D tensor (for 1-D, elements), row-major, as float32. */
  rows(name: string, r0: number, r1: number): Float32Array;
  /** Columns [c0, c1) of a 2-D tensor, as a row-major [rows, c1-c0] float32 array. */
  cols(name: string, c0: number, c1: number): Float32Array;
  /** The whole tensor. */
  full(name: string): Float32Array;
}
