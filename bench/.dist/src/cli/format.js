/** Human-readable compile report: the questions a user asks first, in order. */
const MiB = 2 ** 20;
const fmt = (n, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const mib = (b) => `${fmt(b / MiB)} MiB`;
const pct = (x) => `${fmt(100 * x, 2)}%`;
export function formatReport(r) {
    const p = r.predicted;
    const mem = r.sram.kind === 'sram' ? 'SRAM' : 'HBM';
    const lines = [
        `${r.model} (${r.dtype}) on ${r.topology}: FITS`,
        `  batch ${r.batch}, context ${r.context} tokens, prompt ${r.prompt_tokens} tokens (prefill chunk ${r.prefill_chunk})`,
        '',
        `chips     ${r.chips.total} total = ${r.chips.active} active + ${r.chips.spare} spare; ${r.chips.used} used, ${r.chips.idle} idle`,
        `${mem.padEnd(9)} per chip ${mib(r.sram.capacity_bytes)}: used min ${mib(r.sram.min_used_bytes)} / mean ${mib(r.sram.mean_used_bytes)} / max ${mib(r.sram.max_used_bytes)} (${pct(r.sram.max_used_bytes / r.sram.capacity_bytes)} of the fullest chip)`,
        `layout    ${r.layout.why}`,
        `          embedding on ${r.layout.embed_chips} chip(s), lm_head on ${r.layout.lm_head_chips} chip(s), sampler ${r.layout.sampler}`,
        ...placementLines(r),
        '',
        'predicted (from the hardware model; calibrated parameters listed below)',
        `  time to first token   ${fmt(p.ttft_ms, 3)} ms  (${p.prefill_steps} prefill step(s) of ${fmt(p.prefill_step_ms, 3)} ms)`,
        `  time per output token ${fmt(p.tpot_ms, 4)} ms  (critical path: compute ${fmt(p.breakdown.compute_ms, 3)} ms, transfers ${fmt(p.breakdown.transfer_ms, 3)} ms, sync ${fmt(p.breakdown.sync_ms, 4)} ms)`,
        `  tokens/s per user     ${fmt(p.tokens_per_s_per_user)}`,
        `  tokens/s total        ${fmt(p.tokens_per_s_total)}`,
        `links     ${r.links.used_links} links carry decode traffic; utilisation mean ${pct(r.links.mean)}, max ${pct(r.links.max)} (${r.links.busiest})`,
        `traffic   ${fmt(r.messages_per_token, 0)} messages and ${fmt(r.bytes_per_token / 1e6, 2)} MB per token (decode step of ${r.decode_step.ops} ops)`,
        `power     ${fmt(r.power_w / 1000)} kW for the ${r.nodes_occupied} node(s) the plan occupies (spares of its racks included)`,
        `cost      $${fmt(r.cost_per_million_tokens_usd, 2)} per million tokens (hardware amortisation + electricity at the predicted total rate)`,
    ];
    if (r.calibrated.length) {
        lines.push('calibrated', ...r.calibrated.map((c) => `  ${c.key}: fitted to ${c.figure}`));
    }
    return lines.join('\n') + '\n';
}
/** Placement per layer, runs of identical shape collapsed so 32 layers stay readable. */
function placementLines(r) {
    const rows = r.layout.per_layer;
    if (rows.length <= 8)
        return rows.map((l) => `          L${l.layer}: ${l.chips} (lead ${l.lead})`);
    const head = rows.slice(0, 3).map((l) => `          L${l.layer}: ${l.chips} (lead ${l.lead})`);
    const tail = rows.slice(-2).map((l) => `          L${l.layer}: ${l.chips} (lead ${l.lead})`);
    return [...head, `          ... ${rows.length - 5} more layers, same shape ...`, ...tail];
}
//# sourceMappingURL=format.js.map