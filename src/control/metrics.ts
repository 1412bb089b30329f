import { Counter, Gauge, Registry } from 'prom-client';
import type { Plan, StepKind } from '../compiler/plan.js';
import type { ViolationKind } from '../runtime/index.js';
import type { Fabric } from '../topology/fabric.js';
import type { CompletionResult, TokenEvent } from './engine-types.js';
import { addProcessMetrics, VIOLATION_KINDS } from './metrics-common.js';
import { FleetMetrics, type HostCpuTotal } from './metrics-fleet.js';
import {
  chipsOfPlan,
  linkTrafficOfPlan,
  type ChipStatus,
  type LinkTrafficModel,
  type LinkTrafficSample,
} from './metrics-plan.js';
import { RequestMetrics, type RejectReason } from './metrics-requests.js';
import { VllmMetrics } from './metrics-vllm.js';
import { FaultMetrics } from './metrics-faults.js';

export {
  CHIP_STATES,
  chipsOfPlan,
  entityLabels,
  linkTrafficOfPlan,
  type ChipState,
  type ChipStatus,
  type LinkTrafficModel,
  type LinkTrafficSample,
} from './metrics-plan.js';
export { REJECT_REASONS, TIME_BUCKETS, type RejectReason } from './metrics-requests.js';
export type { HostCpuTotal } from './metrics-fleet.js';

/**
 * The serving deployment's Prometheus metrics (docs/metrics.md lists every family). Each instance owns
 * its own prom-client Registry; the engine and host agents call its methods, and the HTTP layer serves
 * `registry` at GET /metrics. Nothing here is on the frame path: chips keep counters that their host
 * agent collects and reports through these methods. Every method is cheap (a few counter increments);
 * per-chip link traffic derived from the Plan is folded in at scrape time, not per step.
 */

export interface ServingMetricsOptions {
  /** The served model's name: `model_name` of the vLLM aliases and of rackemu_deployment_info. */
  readonly modelName: string;
  readonly topology?: string;
  readonly fidelity?: 'numeric' | 'timing';
  /** The Plan's context (tokens): the top of the vLLM token-count histograms. Default 4096. */
  readonly context?: number;
  /** Which clock the vLLM aliases report: the emulated hardware's (default) or this machine's. */
  readonly vllmClock?: 'virtual' | 'wall';
  /**
   * Also export prom-client's process and Node.js metrics (process_cpu_seconds_total, ...), less the
   * three gauges it names `_total` (promtool rejects them). Default false.
   */
  readonly processMetrics?: boolean;
}

export interface StepRan {
  readonly kind: StepKind;
  /** Batch rows that carried a request in this step. */
  readonly activeRows: number;
  /** Rows the step has (the Plan's batch). */
  readonly rows: number;
  /** The step's length in virtual seconds (default: the length of a step of this kind in the Plan given to setPlan). */
  readonly virtualSeconds?: number;
}

/** What one window of steps moved and saw (the Deployment's WindowResult has these fields). */
export interface WindowRan {
  readonly violations: readonly { readonly kind: ViolationKind }[];
  readonly messages?: {
    readonly frames: number;
    readonly bytes: number;
    readonly transportMessages: number;
    readonly transportBytes: number;
  };
}

export type ViolationCounts = Partial<Readonly<Record<ViolationKind, number>>>;

const STEP_KINDS: readonly StepKind[] = ['prefill', 'decode'];

export class ServingMetrics {
  readonly registry = new Registry();
  /** Fault families: the serving deployment's fault campaign reports here (FaultCampaign's observer). */
  readonly faults: FaultMetrics;
  private readonly requests: RequestMetrics;
  private readonly vllm: VllmMetrics;
  private readonly fleet: FleetMetrics;
  private stepSeconds = 0;
  private planStepSeconds: Readonly<Record<StepKind, number>> = { prefill: 0, decode: 0 };
  private readonly moved: Record<'frames' | 'frameBytes' | 'messages' | 'messageBytes', Counter>;
  private readonly violations: Counter<'kind'>;
  private readonly steps: Record<'count' | 'seconds' | 'activeRows' | 'rows', Counter<'kind'>>;
  private readonly g: Record<
    'occupancy' | 'kvHeld' | 'kvReserved' | 'kvUsage' | 'lag' | 'startupTotal' | 'startupReady' | 'ready',
    Gauge
  >;

  constructor(options: ServingMetricsOptions) {
    const registers = [this.registry];
    const byKind = (name: string, help: string) => new Counter({ name, help, labelNames: ['kind'], registers });
    const gauge = (name: string, help: string) => new Gauge({ name, help, registers });
    new Gauge({
      name: 'rackemu_deployment_info',
      help: 'The served deployment: value 1, its model, topology and fidelity as labels.',
      labelNames: ['model_name', 'topology', 'fidelity'],
      registers,
    }).set({ model_name: options.modelName, topology: options.topology ?? '', fidelity: options.fidelity ?? '' }, 1);
    this.violations = byKind('rackemu_schedule_violations_total', 'Schedule violations, by kind.');
    for (const kind of VIOLATION_KINDS) this.violations.inc({ kind }, 0);
    this.steps = {
      count: byKind('rackemu_steps_total', 'Schedule steps run, by kind (prefill, decode).'),
      seconds: byKind('rackemu_step_virtual_seconds_total', 'Virtual seconds spent in steps, by kind.'),
      activeRows: byKind('rackemu_step_rows_active_total', 'Batch rows that carried a request, summed over steps.'),
      rows: byKind('rackemu_step_rows_total', 'Batch rows, summed over steps.'),
    };
    for (const kind of STEP_KINDS) for (const s of Object.values(this.steps)) s.inc({ kind }, 0);
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    this.moved = {
      frames: counter('rackemu_frames_total', 'Frames (tensor slices) the chips exchanged.'),
      frameBytes: counter('rackemu_frame_bytes_total', 'Tensor bytes of those frames.'),
      messages: counter('rackemu_transport_messages_total', 'Transport messages that carried them (a bundle is one).'),
      messageBytes: counter('rackemu_transport_bytes_total', 'Bytes the transports moved, headers included.'),
    };
    this.g = {
      occupancy: gauge('rackemu_batch_occupancy_ratio', 'Fraction of batch rows in use in the last step.'),
      kvHeld: gauge('rackemu_kv_cache_tokens', 'Tokens held in the KV cache by running requests.'),
      kvReserved: gauge('rackemu_kv_cache_capacity_tokens', 'Tokens of KV cache the Plan reserved (batch x context).'),
      kvUsage: gauge('rackemu_kv_cache_usage_ratio', 'KV cache tokens held over tokens reserved.'),
      lag: gauge('rackemu_pacing_lag_seconds', 'How far the wall clock is behind the virtual clock (--pace realtime).'),
      startupTotal: gauge('rackemu_startup_chips', 'Chips the deployment loads at start-up.'),
      startupReady: gauge('rackemu_startup_chips_ready', 'Chips loaded and ready.'),
      ready: gauge('rackemu_ready', '1 once every chip is loaded and the deployment accepts requests.'),
    };
    this.vllm = new VllmMetrics(this.registry, options.modelName, options.context ?? 4096);
    this.requests = new RequestMetrics(this.registry, this.vllm, options.vllmClock === 'wall');
    this.fleet = new FleetMetrics(this.registry, () => this.stepSeconds);
    this.faults = new FaultMetrics(this.registry);
    if (options.processMetrics) addProcessMetrics(this.registry);
  }

  /** A request arrived and waits for a batch slot. */
  requestQueued(): void {
    this.requests.queued();
  }

  /** A request was refused (HTTP 429 for queue_full, 400 for invalid, 503 while draining). */
  requestRejected(reason: RejectReason): void {
    this.requests.rejected(reason);
  }

  /** A waiting request got a batch slot. */
  requestAdmitted(): void {
    this.requests.admitted();
  }

  /**
   * One generated token, as its step completes (in token order per request). `wallMs` is the
   * performance.now() at which the token was known (default: now). Optional: without these calls,
   * requestFinished counts the tokens and takes each inter-token gap as the request's mean.
   */
  tokenGenerated(e: TokenEvent, wallMs: number = performance.now()): void {
    this.requests.token(e, wallMs);
  }

  /** A request finished: tokens not yet counted by tokenGenerated, prompt tokens, and its timings. */
  requestFinished(result: CompletionResult): void {
    this.requests.finished(result);
  }

  /** A request ended without a result (client gone, a window failed): no timings, counted as `abort`. */
  requestFailed(requestId?: string): void {
    this.requests.aborted(requestId);
  }

  /** Requests in batch slots, and waiting for one. */
  setRequests(running: number, waiting: number): void {
    this.requests.setRequests(running, waiting);
  }

  stepRan(step: StepRan): void {
    const labels = { kind: step.kind };
    const seconds = step.virtualSeconds ?? this.planStepSeconds[step.kind];
    this.steps.count.inc(labels);
    this.steps.seconds.inc(labels, seconds);
    this.steps.activeRows.inc(labels, step.activeRows);
    this.steps.rows.inc(labels, step.rows);
    this.g.occupancy.set(step.rows > 0 ? step.activeRows / step.rows : 0);
    this.stepSeconds += seconds;
    this.fleet.stepRan(step.kind);
  }

  /** A window of steps ran: its violations and what the transports moved. */
  windowRan(result: WindowRan): void {
    this.addViolations(result.violations);
    const m = result.messages;
    if (m === undefined) return;
    this.moved.frames.inc(m.frames);
    this.moved.frameBytes.inc(m.bytes);
    this.moved.messages.inc(m.transportMessages);
    this.moved.messageBytes.inc(m.transportBytes);
  }

  /** KV cache: tokens the running requests hold, and the tokens the Plan reserved (batch x context). */
  setKvCache(tokensHeld: number, tokensReserved: number): void {
    const usage = tokensReserved > 0 ? tokensHeld / tokensReserved : 0;
    this.g.kvHeld.set(tokensHeld);
    this.g.kvReserved.set(tokensReserved);
    this.g.kvUsage.set(usage);
    this.vllm.setKvUsage(usage);
  }

  /** Seconds the wall clock is behind the virtual clock (0 when keeping up, or with --pace max). */
  setPacingLag(seconds: number): void {
    this.g.lag.set(seconds);
  }

  /** Schedule violations seen since the last call: a list (each with its kind), or counts by kind. */
  addViolations(violations: readonly { readonly kind: ViolationKind }[] | ViolationCounts): void {
    if (Array.isArray(violations)) {
      for (const v of violations as readonly { readonly kind: ViolationKind }[]) this.violations.inc({ kind: v.kind });
      return;
    }
    for (const [kind, n] of Object.entries(violations as ViolationCounts)) {
      if (n !== undefined && n > 0) this.violations.inc({ kind }, n);
    }
  }

  /** Start-up progress: chips loaded of the chips to load (rackemu_ready is 1 once they are all loaded). */
  setStartup(ready: number, total: number): void {
    this.g.startupReady.set(ready);
    this.g.startupTotal.set(total);
    this.g.ready.set(total > 0 && ready >= total ? 1 : 0);
  }

  /**
   * The Plan the deployment runs (at start-up, and again after each re-plan): every chip's state and
   * memory (chipsOfPlan; `failedChipIds` are `failed`), the link traffic of each step kind
   * (linkTrafficOfPlan), and the step lengths stepRan defaults to.
   */
  setPlan(plan: Plan, fabric: Fabric, failedChipIds: Iterable<string> = []): void {
    const secondsPerTick = 1 / (plan.topology.chip.clock_mhz * 1e6);
    this.planStepSeconds = {
      prefill: plan.steps.prefill.lengthTicks * secondsPerTick,
      decode: plan.steps.decode.lengthTicks * secondsPerTick,
    };
    this.setChips(chipsOfPlan(plan, fabric, failedChipIds));
    this.setLinkModel(linkTrafficOfPlan(plan, fabric));
  }

  /** A snapshot of every chip (chipsOfPlan gives one from the Plan); chips missing from it lose their series. */
  setChips(chips: readonly ChipStatus[]): void {
    this.fleet.setChips(chips);
  }

  /** Measured link traffic (deltas, e.g. from the chips' counters); `times` multiplies every sample. */
  addLinkTraffic(samples: readonly LinkTrafficSample[], times = 1): void {
    this.fleet.addLinkTraffic(samples, times);
  }

  /** The Plan's traffic per step (linkTrafficOfPlan): from now on each stepRan adds it, folded in at scrape time. */
  setLinkModel(model: LinkTrafficModel): void {
    this.fleet.setLinkModel(model);
  }

  /**
   * Cumulative totals: busy virtual seconds of each host CPU (HostLedger.busy()), and the real CPU
   * seconds (user + system) of this process, which does the host agents' work.
   */
  hostCpu(busy: readonly HostCpuTotal[], realCpuSeconds: number): void {
    this.fleet.hostCpu(busy, realCpuSeconds);
  }

  /** A host loaded programs and weights into its chips over PCIe: bytes, and the virtual seconds it took. */
  addHostLoad(hostId: string, bytes: number, virtualSeconds: number): void {
    this.fleet.addHostLoad(hostId, bytes, virtualSeconds);
  }

  /** The content type of metrics(): Prometheus text format 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, as GET /metrics serves it (with `contentType`). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
