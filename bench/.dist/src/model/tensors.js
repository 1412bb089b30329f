/**
 * The Hugging Face tensor names and shapes a model of a given config consists of (the naming
 * contract of weights.ts). Safetensors folders are validated against this list and the seeded
 * random store generates exactly these tensors.
 */
export const EMBED_TOKENS = 'model.embed_tokens.weight';
export const LM_HEAD = 'lm_head.weight';
export const FINAL_NORM = 'model.norm.weight';
/** Every tensor the model needs, in checkpoint order (embedding, layers, final norm, lm_head). */
export function requiredTensors(config) {
    const { hidden, heads, kvHeads, headDim, intermediate, experts, vocab } = config;
    const out = [{ name: EMBED_TOKENS, shape: [vocab, hidden] }];
    for (let i = 0; i < config.layers; i++) {
        const p = `model.layers.${i}`;
        out.push({ name: `${p}.input_layernorm.weight`, shape: [hidden] }, { name: `${p}.self_attn.q_proj.weight`, shape: [heads * headDim, hidden] }, { name: `${p}.self_attn.k_proj.weight`, shape: [kvHeads * headDim, hidden] }, { name: `${p}.self_attn.v_proj.weight`, shape: [kvHeads * headDim, hidden] }, { name: `${p}.self_attn.o_proj.weight`, shape: [hidden, heads * headDim] }, { name: `${p}.post_attention_layernorm.weight`, shape: [hidden] });
        // Naming follows the family, not the expert count: a Mixtral checkpoint with one expert still
        // uses block_sparse_moe names (that is what transformers' MixtralForCausalLM saves).
        if (config.family === 'mixtral') {
            out.push({ name: `${p}.block_sparse_moe.gate.weight`, shape: [experts, hidden] });
            for (let e = 0; e < experts; e++) {
                const x = `${p}.block_sparse_moe.experts.${e}`;
                out.push({ name: `${x}.w1.weight`, shape: [intermediate, hidden] }, { name: `${x}.w2.weight`, shape: [hidden, intermediate] }, { name: `${x}.w3.weight`, shape: [intermediate, hidden] });
            }
        }
        else {
            out.push({ name: `${p}.mlp.gate_proj.weight`, shape: [intermediate, hidden] }, { name: `${p}.mlp.up_proj.weight`, shape: [intermediate, hidden] }, { name: `${p}.mlp.down_proj.weight`, shape: [hidden, intermediate] });
        }
    }
    out.push({ name: FINAL_NORM, shape: [hidden] });
    if (!config.tieEmbeddings)
        out.push({ name: LM_HEAD, shape: [vocab, hidden] });
    return out;
}
/** The tensor to read for the output projection: lm_head.weight, or the embedding when tied. */
export function lmHeadName(config) {
    return config.tieEmbeddings ? EMBED_TOKENS : LM_HEAD;
}
/**
 * Checkpoint entries that are not weights and are recomputed from the config (older transformers
 * versions saved the rotary inverse frequencies as a buffer): ignored wherever they appear.
 */
export function isIgnoredTensor(name) {
    return /(^|\.)rotary_emb\.inv_freq$/.test(name);
}
//# sourceMappingURL=tensors.js.map