import type { Plan } from '../compiler/plan.js';
import type { FaultRecord } from '../control/fault-campaign.js';
import type { ExperimentRunOptions, ExperimentSpec } from './types.js';
import type { RequestOutcome } from './workload.js';

/** `rackemu experiment run --json`: snake_case, as every JSON rackemu prints. */
export interface ExperimentReport {
  readonly experiment: string;
  readonly topology: string;
  readonly model: string;
  readonly fidelity: 'numeric' | 'timing';
  readonly transport: string;
  readonly isolation: string;
  readonly requests: { readonly total: number; readonly completed: number; readonly lost: number };
  /**
   * Numeric: every completed request's tokens equal the baseline's (requests exposed to an ECC-off flip
   * aside); timing: token counts.
   */
  readonly tokens_identical: boolean;
  readonly silent_corruption: {
    readonly faults: number;
    readonly requests_exposed: number;
    readonly requests_changed: number;
    readonly tokens_changed: number;
  };
  readonly requests_changed: readonly string[];
  readonly throughput: {
    readonly baseline_tokens_per_s: number;
    readonly faulted_tokens_per_s: number;
    /** 1 - faulted / baseline, in virtual time. */
    readonly dip: number;
  };
  readonly faults: readonly FaultReport[];
  readonly expect: { readonly passed: boolean; readonly failures: readonly string[] };
  readonly wall: { readonly baseline_s: number; readonly faulted_s: number };
}

export interface FaultReport {
  readonly kind: string;
  readonly target: string;
  readonly where: string;
  readonly injected: boolean;
  readonly detected: boolean;
  readonly recovered: boolean;
  readonly attributed_correctly: boolean;
  readonly mechanism: string | null;
  readonly detected_part: string | null;
  readonly action: string | null;
  readonly spare: string | null;
  readonly injected_virtual_ms: number | null;
  readonly detected_virtual_ms: number | null;
  readonly injected_wall_ms: number | null;
  readonly detected_wall_ms: number | null;
  readonly recovery_wall_ms: number | null;
  readonly recovery_virtual_ms: number | null;
  readonly reload_bytes: number;
  /** Wall ms the compiler took to re-plan (this machine's time, not counted in recovery_virtual_ms). */
  readonly replan_wall_ms: number | null;
  readonly note: string | null;
}

export interface ReportInput {
  readonly spec: ExperimentSpec;
  readonly plan: Plan;
  readonly options: ExperimentRunOptions;
  readonly baseline: readonly RequestOutcome[];
  readonly faulted: readonly RequestOutcome[];
  readonly records: readonly FaultRecord[];
  readonly wall: { readonly baselineSeconds: number; readonly faultedSeconds: number };
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Tokens per virtual second over the run: every token over the span from the first arrival to the last token. */
function tokensPerSecond(outcomes: readonly RequestOutcome[]): number {
  let tokens = 0;
  let end = 0;
  for (const o of outcomes) {
    if (o.result === null) continue;
    tokens += o.result.tokenIds.length;
    end = Math.max(end, o.result.virtual.arrivalMs + o.result.virtual.e2eMs);
  }
  return end > 0 ? tokens / (end / 1000) : 0;
}

export function buildReport(r: ReportInput): ExperimentReport {
  const hz = r.plan.topology.chip.clock_mhz * 1e6;
  const ms = (tick: number) => round((tick / hz) * 1000);
  const numeric = r.spec.fidelity === 'numeric';
  // ECC-off flips stay in SRAM until the chip reloads: requests that finished after one was injected are exposed
  const silent = r.records.filter((f) => f.kind === 'sram-bitflip' && f.note?.startsWith('ECC off') === true);
  const firstSilentMs = silent.length > 0 ? Math.min(...silent.map((f) => (f.injected!.tick / hz) * 1000)) : Infinity;
  let exposed = 0;
  let changed = 0;
  let tokensChanged = 0;
  let identical = true;
  const changedIds: string[] = [];
  r.faulted.forEach((o, i) => {
    const b = r.baseline[i];
    if (o.result === null || b?.result === null || b === undefined) return;
    const mine = o.result.tokenIds;
    const ref = b.result.tokenIds;
    const differ = numeric
      ? mine.length !== ref.length || mine.some((t, k) => t !== ref[k])
      : mine.length !== ref.length;
    const isExposed = o.result.virtual.arrivalMs + o.result.virtual.e2eMs > firstSilentMs;
    if (isExposed) exposed++;
    if (!differ) return;
    changedIds.push(o.id);
    if (isExposed) {
      changed++;
      tokensChanged += mine.filter((t, k) => t !== ref[k]).length;
    } else identical = false;
  });
  const completed = r.faulted.filter((o) => o.result !== null).length;
  const base = tokensPerSecond(r.baseline);
  const faultedTps = tokensPerSecond(r.faulted);
  const faults: FaultReport[] = r.records.map((f) => ({
    kind: f.kind,
    target: f.target,
    where: f.where,
    injected: f.injected !== null && f.note?.startsWith('its target was retired') !== true,
    detected: f.detected !== null,
    recovered: f.recovered !== null,
    attributed_correctly: f.detected?.attributed ?? false,
    mechanism: f.detected?.mechanism ?? null,
    detected_part: f.detected ? `${f.detected.part.kind} ${f.detected.part.id}` : null,
    action: f.recovered?.action ?? null,
    spare: f.recovered?.spare ?? null,
    injected_virtual_ms: f.injected ? ms(f.injected.tick) : null,
    detected_virtual_ms: f.detected && f.detected.tick >= 0 ? ms(f.detected.tick) : null,
    injected_wall_ms: f.injected ? round(f.injected.wallMs, 1) : null,
    detected_wall_ms: f.detected ? round(f.detected.wallMs, 1) : null,
    recovery_wall_ms: f.recovered ? round(f.recovered.wallMs, 1) : null,
    recovery_virtual_ms: f.recovered ? round(f.recovered.virtualMs) : null,
    reload_bytes: f.recovered?.reloadBytes ?? 0,
    replan_wall_ms: f.recovered ? round(f.recovered.replanMs, 1) : null,
    note: f.note,
  }));
  const report: Omit<ExperimentReport, 'expect'> = {
    experiment: r.spec.name,
    topology: r.plan.topology.name,
    model: r.plan.model.name,
    fidelity: r.spec.fidelity,
    transport: r.options.transport,
    isolation: r.options.isolation,
    requests: { total: r.faulted.length, completed, lost: r.faulted.length - completed },
    tokens_identical: identical,
    silent_corruption: {
      faults: silent.length,
      requests_exposed: exposed,
      requests_changed: changed,
      tokens_changed: tokensChanged,
    },
    requests_changed: changedIds,
    throughput: {
      baseline_tokens_per_s: round(base, 1),
      faulted_tokens_per_s: round(faultedTps, 1),
      dip: base > 0 ? round(1 - faultedTps / base) : 0,
    },
    faults,
    wall: { baseline_s: round(r.wall.baselineSeconds, 2), faulted_s: round(r.wall.faultedSeconds, 2) },
  };
  return { ...report, expect: checkExpect(r.spec, report) };
}

/** The experiment's `expect` block against the report; every failure is named. */
export function checkExpect(spec: ExperimentSpec, r: Omit<ExperimentReport, 'expect'>): ExperimentReport['expect'] {
  const e = spec.expect;
  const failures: string[] = [];
  if (e.lostRequests !== undefined && r.requests.lost > e.lostRequests)
    failures.push(`lost_requests: expected at most ${e.lostRequests}, got ${r.requests.lost}`);
  if (e.tokensIdentical !== undefined && r.tokens_identical !== e.tokensIdentical)
    failures.push(`tokens_identical: expected ${e.tokensIdentical}, got ${r.tokens_identical}`);
  const fired = r.faults.filter((f) => f.injected);
  // an ECC-off flip is silent by design: its effect is reported, not detected
  const detectable = fired.filter((f) => !(f.kind === 'sram-bitflip' && f.note?.startsWith('ECC off')));
  if (e.allDetected) {
    for (const f of detectable) {
      if (!f.detected)
        failures.push(`all_detected: ${f.where} ${f.kind} ${f.target} was not detected (${f.note ?? ''})`);
      else if (!f.attributed_correctly)
        failures.push(`all_detected: ${f.where} ${f.kind} ${f.target} was attributed to ${f.detected_part}`);
    }
  }
  if (e.allRecovered) {
    for (const f of detectable)
      if (!f.recovered) failures.push(`all_recovered: ${f.where} ${f.kind} ${f.target} was not recovered`);
  }
  if (e.maxRecoveryVirtualMs !== undefined) {
    for (const f of fired) {
      if ((f.recovery_virtual_ms ?? 0) > e.maxRecoveryVirtualMs)
        failures.push(`max_recovery_virtual_ms: ${f.where} took ${f.recovery_virtual_ms} ms`);
    }
  }
  return { passed: failures.length === 0, failures };
}

/** The report as Markdown (--report FILE.md). */
export function reportMarkdown(r: ExperimentReport): string {
  const lines = [
    `# Experiment ${r.experiment}`,
    '',
    `${r.model} on ${r.topology}, ${r.fidelity} fidelity, ${r.transport} transport, ${r.isolation} isolation.`,
    '',
    `- requests: ${r.requests.completed}/${r.requests.total} completed, ${r.requests.lost} lost`,
    `- tokens identical to the fault-free baseline: ${r.tokens_identical}`,
    `- silent corruption (ECC off): ${r.silent_corruption.faults} flip(s), ${r.silent_corruption.requests_exposed} request(s) exposed, ${r.silent_corruption.requests_changed} changed (${r.silent_corruption.tokens_changed} tokens)`,
    `- throughput (virtual): ${r.throughput.baseline_tokens_per_s} tokens/s fault-free, ${r.throughput.faulted_tokens_per_s} with faults (dip ${(r.throughput.dip * 100).toFixed(1)}%)`,
    `- expect: ${r.expect.passed ? 'passed' : `FAILED: ${r.expect.failures.join('; ')}`}`,
    '',
    '| fault | target | detected by | attributed to | action | spare | recovery virtual ms | recovery wall ms | note |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.faults.map(
      (f) =>
        `| ${f.kind} | ${f.target} | ${f.mechanism ?? '-'} | ${f.detected_part ?? '-'}${f.detected ? (f.attributed_correctly ? '' : ' (wrong)') : ''} | ${f.action ?? '-'} | ${f.spare ?? '-'} | ${f.recovery_virtual_ms ?? '-'} | ${f.recovery_wall_ms ?? '-'} | ${f.note ?? ''} |`,
    ),
    '',
  ];
  return lines.join('\n');
}
