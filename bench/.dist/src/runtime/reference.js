import { RunError } from '../util/errors.js';
import { KvCache, applyRope, argmaxRows, attend, embedLookup, matmulXWt, rmsNorm, routeTopK, swigluSlice, } from './kernels.js';
/** True when the model's FFN is Mixtral's block_sparse_moe (else llama/mistral mlp.*_proj). */
export function usesMoe(config) {
    return config.family === 'mixtral' || config.experts > 1;
}
export class ReferenceModel {
    config;
    weights;
    caches;
    layerWeights;
    embed;
    finalNorm;
    lmHead;
    constructor(config, weights, opts = {}) {
        this.config = config;
        this.weights = weights;
        const c = config;
        if (c.heads % c.kvHeads !== 0) {
            throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `heads ${c.heads} not a multiple of kvHeads ${c.kvHeads}`);
        }
        const cap = opts.capacity ?? c.maxPositions;
        this.caches = Array.from({ length: c.layers }, () => new KvCache(cap, c.kvHeads, c.headDim));
        this.layerWeights = new Array(c.layers).fill(undefined);
    }
    /** Empty every layer's KV cache (start a new sequence). */
    reset() {
        for (const kc of this.caches)
            kc.truncate(0);
    }
    layer(i) {
        const cached = this.layerWeights[i];
        if (cached)
            return cached;
        const w = this.weights;
        const p = `model.layers.${i}.`;
        let ffn;
        if (usesMoe(this.config)) {
            const m = `${p}block_sparse_moe.`;
            const ex = Array.from({ length: this.config.experts }, (_, e) => e);
            ffn = {
                kind: 'moe',
                router: w.full(`${m}gate.weight`),
                w1: ex.map((e) => w.full(`${m}experts.${e}.w1.weight`)),
                w3: ex.map((e) => w.full(`${m}experts.${e}.w3.weight`)),
                w2: ex.map((e) => w.full(`${m}experts.${e}.w2.weight`)),
            };
        }
        else {
            ffn = {
                kind: 'dense',
                gate: w.full(`${p}mlp.gate_proj.weight`),
                up: w.full(`${p}mlp.up_proj.weight`),
                down: w.full(`${p}mlp.down_proj.weight`),
            };
        }
        const lw = {
            ln1: w.full(`${p}input_layernorm.weight`),
            q: w.full(`${p}self_attn.q_proj.weight`),
            k: w.full(`${p}self_attn.k_proj.weight`),
            v: w.full(`${p}self_attn.v_proj.weight`),
            o: w.full(`${p}self_attn.o_proj.weight`),
            ln2: w.full(`${p}post_attention_layernorm.weight`),
            ffn,
        };
        this.layerWeights[i] = lw;
        return lw;
    }
    embedTable() {
        return (this.embed ??= this.weights.full('model.embed_tokens.weight'));
    }
    head() {
        if (!this.lmHead) {
            this.lmHead = this.config.tieEmbeddings ? this.embedTable() : this.weights.full('lm_head.weight');
        }
        return this.lmHead;
    }
    /** One decoder layer on x [rows, hidden] (in place), appending k/v at `positions` to its cache. */
    layerForward(i, x, positions) {
        const c = this.config;
        const rows = positions.length;
        const H = c.hidden;
        const hd = c.headDim;
        const lw = this.layer(i);
        const n = rmsNorm(x, rows, H, lw.ln1, c.rmsNormEps);
        const q = matmulXWt(n, rows, H, lw.q, c.heads * hd);
        const k = matmulXWt(n, rows, H, lw.k, c.kvHeads * hd);
        const v = matmulXWt(n, rows, H, lw.v, c.kvHeads * hd);
        applyRope(q, rows, c.heads, hd, positions, c.ropeTheta);
        applyRope(k, rows, c.kvHeads, hd, positions, c.ropeTheta);
        this.caches[i].append(k, v, positions);
        const a = attend(q, this.caches[i], positions, c.heads / c.kvHeads, c.slidingWindow);
        const o = matmulXWt(a, rows, c.heads * hd, lw.o, H);
        for (let j = 0; j < rows * H; j++)
            x[j] += o[j];
        const n2 = rmsNorm(x, rows, H, lw.ln2, c.rmsNormEps);
        const f = this.ffnForward(lw.ffn, n2, rows);
        for (let j = 0; j < rows * H; j++)
            x[j] += f[j];
        return x;
    }
    ffnForward(ffn, x, rows) {
        const c = this.config;
        const H = c.hidden;
        if (ffn.kind === 'dense')
            return swigluSlice(x, rows, H, ffn.gate, ffn.up, ffn.down, c.intermediate);
        const E = c.experts;
        const K = c.expertsPerToken;
        const logits = matmulXWt(x, rows, H, ffn.router, E);
        const route = routeTopK(logits, rows, E, K);
        const out = new Float32Array(rows * H);
        for (let e = 0; e < E; e++) {
            const sel = [];
            const wt = [];
            for (let r = 0; r < rows; r++) {
                for (let t = 0; t < K; t++) {
                    if (route.experts[r * K + t] === e) {
                        sel.push(r);
                        wt.push(route.weights[r * K + t]);
                    }
                }
            }
            if (sel.length === 0)
                continue;
            const xs = new Float32Array(sel.length * H);
            sel.forEach((r, j) => xs.set(x.subarray(r * H, (r + 1) * H), j * H));
            const y = swigluSlice(xs, sel.length, H, ffn.w1[e], ffn.w3[e], ffn.w2[e], c.intermediate);
            sel.forEach((r, j) => {
                const w = wt[j];
                for (let d = 0; d < H; d++)
                    out[r * H + d] += w * y[j * H + d];
            });
        }
        return out;
    }
    /**
     * Run tokens at positions (appending to the KV caches) and return the logits
     * [vocab] of the last row, or [rows, vocab] of every row with allRows.
     */
    forward(tokenIds, positions, allRows = false) {
        const c = this.config;
        const rows = tokenIds.length;
        if (rows === 0 || positions.length !== rows) {
            throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `forward: ${rows} tokens and ${positions.length} positions`);
        }
        for (let r = 0; r < rows; r++) {
            const id = tokenIds[r];
            if (!Number.isInteger(id) || id < 0 || id >= c.vocab) {
                throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `token id ${id} outside [0, ${c.vocab})`, {
                    details: { got: String(id), expected: `integer in [0, ${c.vocab})` },
                });
            }
        }
        const x = embedLookup(tokenIds, this.embedTable(), 0, c.vocab, c.hidden);
        for (let i = 0; i < c.layers; i++)
            this.layerForward(i, x, positions);
        const H = c.hidden;
        const last = allRows ? x : x.subarray((rows - 1) * H, rows * H);
        const nr = allRows ? rows : 1;
        const n = rmsNorm(last, nr, H, (this.finalNorm ??= this.weights.full('model.norm.weight')), c.rmsNormEps);
        return matmulXWt(n, nr, H, this.head(), c.vocab);
    }
}
/**
 * Greedy generation: prefill the prompt (positions 0..n-1), pick token 0 from the last prompt
 * position's logits, then decode one token at a time through the KV caches.
 */
export function referenceGenerate(config, weights, promptIds, maxNewTokens, opts = {}) {
    if (promptIds.length === 0)
        throw new RunError('RACKEMU_ERR_GENERATE_OPTION', 'empty prompt');
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
        throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `maxNewTokens ${maxNewTokens} is not a non-negative integer`);
    }
    const total = promptIds.length + maxNewTokens;
    if (total > config.maxPositions) {
        throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `prompt (${promptIds.length}) + maxNewTokens (${maxNewTokens}) exceeds maxPositions ${config.maxPositions}`);
    }
    const chunk = opts.prefillChunk ?? promptIds.length;
    if (!Number.isInteger(chunk) || chunk < 1) {
        throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `prefillChunk ${chunk} is not a positive integer`);
    }
    const model = new ReferenceModel(config, weights, { capacity: total });
    let logits = new Float32Array(0);
    for (let s = 0; s < promptIds.length; s += chunk) {
        const ids = promptIds.slice(s, s + chunk);
        logits = model.forward(ids, ids.map((_, j) => s + j));
    }
    const tokens = [];
    const allLogits = [];
    for (let t = 0; t < maxNewTokens; t++) {
        if (t > 0)
            logits = model.forward([tokens[t - 1]], [promptIds.length + t - 1]);
        const tok = argmaxRows(logits, 1, config.vocab).indices[0];
        tokens.push(tok);
        allLogits.push(logits);
    }
    return { tokens, finalLogits: logits, allLogits };
}
//# sourceMappingURL=reference.js.map