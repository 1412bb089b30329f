/**
 * Model architecture description shared by the compiler, the reference and the chip runtime.
 * One shape covers the Mixtral / Mistral / Llama family: a decoder-only transformer with RMSNorm,
 * rotary embeddings (Hugging Face rotate-half convention), grouped-query attention and a SwiGLU
 * feed-forward that is either dense (experts = 1) or a top-k softmax-routed mixture of experts.
 */
export const WEIGHT_DTYPES = ['bf16', 'fp16', 'int8', 'fp8'];
export function bytesPerParam(dtype) {
    return dtype === 'bf16' || dtype === 'fp16' ? 2 : 1;
}
export function isMoe(m) {
    return m.experts > 1;
}
export function paramCounts(m) {
    const q = m.heads * m.headDim;
    const kv = m.kvHeads * m.headDim;
    const attentionPerLayer = m.hidden * (q + 2 * kv) + q * m.hidden;
    const expertPerLayer = 3 * m.hidden * m.intermediate;
    const routerPerLayer = isMoe(m) ? m.experts * m.hidden : 0;
    const normsPerLayer = 2 * m.hidden;
    const embedding = m.vocab * m.hidden;
    const lmHead = m.tieEmbeddings ? 0 : m.vocab * m.hidden;
    const perLayer = attentionPerLayer + m.experts * expertPerLayer + routerPerLayer + normsPerLayer;
    const activePerLayer = attentionPerLayer + m.expertsPerToken * expertPerLayer + routerPerLayer + normsPerLayer;
    const total = m.layers * perLayer + embedding + lmHead + m.hidden;
    const active = m.layers * activePerLayer + embedding + lmHead + m.hidden;
    return { attentionPerLayer, expertPerLayer, routerPerLayer, normsPerLayer, embedding, lmHead, total, active };
}
/** Bytes of KV cache per token (all layers) at the given element size. */
export function kvBytesPerToken(m, elementBytes) {
    return 2 * m.layers * m.kvHeads * m.headDim * elementBytes;
}
//# sourceMappingURL=config.js.map