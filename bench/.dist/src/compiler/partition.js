import { isMoe } from '../model/config.js';
import { ACT_BYTES, KV_BYTES } from './cost.js';
/** Largest divisor of n that is <= cap. */
function largestDivisorAtMost(n, cap) {
    for (let d = Math.min(n, cap); d >= 1; d--)
        if (n % d === 0)
            return d;
    return 1;
}
/** Slice i of `total` cut into `parts` near-equal contiguous pieces. */
export function sliceOf(total, parts, i) {
    const base = Math.floor(total / parts);
    const extra = total % parts;
    const start = i * base + Math.min(i, extra);
    return { start, end: start + base + (i < extra ? 1 : 0) };
}
/** The kernels chip `i` of a group runs for one layer. */
export function layerKernels(m, layer, S, A, i) {
    const units = [];
    const s = sliceOf(m.intermediate, S, i);
    if (s.end > s.start)
        for (let e = 0; e < m.experts; e++)
            units.push({ expert: e, start: s.start, end: s.end });
    const ffn = { kind: 'ffn', layer, units };
    if (i >= A)
        return { ffn };
    const kvPer = m.kvHeads / A;
    const group = m.heads / m.kvHeads;
    const attention = {
        kind: 'attention',
        layer,
        kvHeadStart: i * kvPer,
        kvHeadEnd: (i + 1) * kvPer,
        headStart: i * kvPer * group,
        headEnd: (i + 1) * kvPer * group,
    };
    return { attention, ffn };
}
/** Static bytes one layer puts on chip i of a group: weights, norms, router copy and KV cache. */
export function layerBytesOnChip(hw, S, A, i, batch, context) {
    const m = hw.model;
    const wb = hw.weightBytesPerParam;
    const s = sliceOf(m.intermediate, S, i);
    let weights = m.experts * 3 * m.hidden * (s.end - s.start) * wb + m.hidden * ACT_BYTES; // experts + post-attention norm
    if (isMoe(m))
        weights += m.experts * m.hidden * wb; // router, replicated so each chip routes locally
    let kv = 0;
    if (i < A) {
        const kvPer = m.kvHeads / A;
        const heads = kvPer * (m.heads / m.kvHeads);
        weights += (m.hidden * (heads + 2 * kvPer) * m.headDim + heads * m.headDim * m.hidden) * wb + m.hidden * ACT_BYTES;
        kv = 2 * kvPer * m.headDim * context * batch * KV_BYTES;
    }
    return { weights, kv };
}
/** Analytic decode-step estimate used only to rank candidates; the chosen one is scheduled exactly. */
function estimate(hw, fabric, S, A, Lg, batch, context) {
    const m = hw.model;
    const t = fabric.topology;
    const k0 = layerKernels(m, 0, S, A, 0);
    const attn = hw.opCost(k0.attention, batch, batch, context, 1).ticks;
    const ffn = hw.opCost(k0.ffn, batch, batch, context, 1).ticks;
    const sumA = hw.opCost({ kind: 'sum', layer: 0, what: 'attention' }, batch, batch, context, A + 1).ticks;
    const sumF = hw.opCost({ kind: 'sum', layer: 0, what: 'ffn' }, batch, batch, context, S + 1).ticks;
    const local = t.links.local;
    const linkBytesPerTick = (local.lanes * local.lane_gbps) / 8 / hw.ticksPerNs;
    const ports = local.wiring === 'switch' ? 1 : local.per_chip + t.links.global.per_chip;
    const portBytesPerTick = local.wiring === 'switch' ? linkBytesPerTick * local.per_chip : linkBytesPerTick;
    const ser = (batch * m.hidden * ACT_BYTES) / portBytesPerTick;
    const hop = hw.nsToTicks(local.hop_latency_ns) * (S <= t.chips_per_node ? 1 : 3);
    const fan = (n) => (n <= 0 ? 0 : Math.ceil(n / ports) * ser + hop);
    const comm = 2 * fan(A - 1) + 2 * fan(S - 1);
    const perLayer = attn + ffn + sumA + sumF + comm;
    const groups = Math.ceil(m.layers / Lg);
    return m.layers * perLayer + groups * (hop + ser);
}
/**
 * All (chips per group, layers per group) splits whose heaviest chip fits, best first. `reserve` is
 * per-chip headroom kept for activations and for spreading the embedding and lm_head.
 */
export function candidates(hw, fabric, activeChips, batch, context, reserve) {
    const m = hw.model;
    const out = [];
    const maxS = Math.min(activeChips, m.intermediate, 1024);
    for (let S = 1; S <= maxS; S++) {
        const A = largestDivisorAtMost(m.kvHeads, S);
        let perLayer0 = 0; // heaviest chip is an attention chip (index 0) by construction
        let perLayerAll = 0;
        for (let i = 0; i < S; i++) {
            const b = layerBytesOnChip(hw, S, A, i, batch, context);
            if (i === 0)
                perLayer0 = b.weights + b.kv;
            perLayerAll += b.weights + b.kv;
        }
        for (let Lg = 1; Lg <= m.layers; Lg++) {
            const groups = Math.ceil(m.layers / Lg);
            if (groups * S > activeChips)
                continue;
            // consecutive Lg values with the same group count only add load per chip
            if (Lg > 1 && Math.ceil(m.layers / (Lg - 1)) === groups)
                continue;
            const maxChipBytes = Lg * perLayer0;
            if (maxChipBytes + reserve > hw.capacityBytes)
                break; // larger Lg only adds bytes per chip
            out.push({
                chipsPerGroup: S,
                layersPerGroup: Lg,
                groups,
                attentionChips: A,
                maxChipBytes,
                layerBytes: m.layers * perLayerAll,
                estimateTicks: estimate(hw, fabric, S, A, Lg, batch, context),
            });
        }
    }
    out.sort((a, b) => a.estimateTicks - b.estimateTicks || a.groups * a.chipsPerGroup - b.groups * b.chipsPerGroup);
    return out;
}
//# sourceMappingURL=partition.js.map