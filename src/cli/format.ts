import type { CompileReport } from '../compiler/report.js';

/** Human-readable compile report: the questions a user asks first, in order. */

const MiB = 2 ** 20;
const fmt = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const mib = (b: number) => `${fmt(b / MiB)} MiB`;
const pct = (x: number) => `${fmt(100 * x, 2)}%`;

export function formatReport(r: CompileReport): string {
  const p = r.predicted;
  const mem = r.sram.kind === 'sram' ? 'SRAM' : 'HBM';
  const lines = [
    `${r.model} (${r.dtype}) on ${r.topology}: FITS`,
    `  batch ${r.batch}${r.micro_batches > 1 ? ` x ${r.micro_batches} micro-batches` : ''}, context ${r.context} tokens, prompt ${r.prompt_tokens} tokens (prefill chunk ${r.prefill_chunk})`,
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
    `pipeline  ${r.pipeline.micro_batches} micro-batch(es) through ${r.pipeline.groups} layer group(s): each group computes ${pct(r.pipeline.group_busy)} of the decode step (idle ${pct(r.pipeline.fill)} before its first micro-batch, ${pct(r.pipeline.drain)} after its last); ids ready at ${r.pipeline.ids_ready_ms.map((v) => fmt(v, 3)).join(', ')} ms`,
    `links     ${r.links.used_links} links carry decode traffic; utilisation mean ${pct(r.links.mean)}, max ${pct(r.links.max)} (${r.links.busiest})`,
    `traffic   ${fmt(r.messages_per_token, 0)} messages and ${fmt(r.bytes_per_token / 1e6, 2)} MB per token (decode step of ${r.decode_step.ops} ops)`,
    `power     ${fmt(r.power_w / 1000)} kW for the ${r.nodes_occupied} node(s) the plan occupies (spares of its racks included)`,
    `cost      $${fmt(r.cost_per_million_tokens_usd, 2)} per million tokens (hardware amortisation + electricity at the predicted total rate)`,
  ];
  lines.push(...controlPlaneLines(r));
  if (r.calibrated.length) {
    lines.push('calibrated', ...r.calibrated.map((c) => `  ${c.key}: fitted to ${c.figure}`));
  }
  return lines.join('\n') + '\n';
}

/** Host agents: CPU load at the planned batch and rate, start-up load over PCIe, RAM held for reload. */
function controlPlaneLines(r: CompileReport): string[] {
  const c = r.control_plane;
  const gb = (b: number) => `${fmt(b / 1e9)} GB`;
  const ms = c.load_time_s * 1000;
  const warn = c.cpu_utilisation_max > 1 ? ' (OVERLOADED: its CPUs cannot keep up)' : '';
  return [
    `hosts     ${c.hosts} host agent(s), ${c.cpus} CPUs: utilisation mean ${pct(c.cpu_utilisation_mean)}, max ${pct(c.cpu_utilisation_max)} (${c.busiest_host})${warn}; start-up load over PCIe ${fmt(ms, ms < 10 ? 2 : 0)} ms`,
    `host RAM  ${gb(c.host_ram_bytes_total)} of programs and weights kept for reload, at most ${gb(c.host_ram_bytes_per_host_max)} per host of ${fmt(c.host_ram_capacity_bytes / 2 ** 30, 0)} GiB`,
  ];
}

/** Placement per layer, runs of identical shape collapsed so 32 layers stay readable. */
function placementLines(r: CompileReport): string[] {
  const rows = r.layout.per_layer;
  if (rows.length <= 8) return rows.map((l) => `          L${l.layer}: ${l.chips} (lead ${l.lead})`);
  const head = rows.slice(0, 3).map((l) => `          L${l.layer}: ${l.chips} (lead ${l.lead})`);
  const tail = rows.slice(-2).map((l) => `          L${l.layer}: ${l.chips} (lead ${l.lead})`);
  return [...head, `          ... ${rows.length - 5} more layers, same shape ...`, ...tail];
}
