import type { Plan } from '../compiler/plan.js';
import { replan, type Retirement } from '../compiler/replan.js';
import { arm } from '../faults/arm.js';
import { detectEcc, detectError, detectViolations, pairName, type Detection } from '../faults/detect.js';
import { resolveTarget, type Target } from '../faults/targets.js';
import type { FaultSpec } from '../faults/types.js';
import type { Fabric } from '../topology/fabric.js';
import { RunError } from '../util/errors.js';
import { logger } from '../util/log.js';
import type { Deployment, WindowResult } from './deployment.js';
import type { ArmedFaults, FaultHooks, Recovered, WindowFailure, WindowView } from './engine-faults.js';
import type { FaultDetectedAt, FaultObserver } from './metrics-faults.js';

/**
 * A fault campaign on a serving engine (FaultHooks): injects each fault when its trigger comes up, one
 * per window, sees it detected, and recovers. Recovery policy (docs/faults.md):
 *   - dead hardware (a chip or host that died or stopped answering, a link whose status register shows
 *     it down or erring): its node is retired and the rack's spare node takes its place (re-plan,
 *     reload of what changed); a link is routed around once its rack has no spare left;
 *   - anything else (a corrupt or late frame, a skewed clock, a lost NATS connection) is first taken as
 *     transient: the system resynchronises and replays; the same part failing again is persistent;
 *   - an uncorrectable ECC word reloads the chip's weights from host RAM.
 * With no spare left the re-plan fails and the engine fails its requests closed.
 */

export interface CampaignFault {
  readonly spec: FaultSpec;
  readonly target: Target;
  /** Where the fault came from, for messages (e.g. `faults[3]`, `random[2]`). */
  readonly where: string;
}

export interface FaultRecord {
  readonly kind: FaultSpec['kind'];
  readonly target: string;
  readonly where: string;
  injected: { step: number; tick: number; wallMs: number } | null;
  detected:
    | (Detection & {
        wallMs: number;
        attributed: boolean;
        /** The window of steps that failed or broke the schedule (a recovery's; none for an ECC correction). */
        window?: { firstStep: number; baseTick: number; steps: number };
      })
    | null;
  recovered: {
    action: 'replan' | 'resync' | 'reload' | 'corrected';
    wallMs: number;
    virtualMs: number;
    spare: string | null;
    reloadBytes: number;
    /** Wall ms the compiler took to re-plan (this machine's time: not in virtualMs). */
    replanMs: number;
  } | null;
  /** Why it did not fire or was not detected, when it did not. */
  note: string | null;
}

export interface CampaignOptions {
  readonly faults: readonly CampaignFault[];
  /** Starts a deployment of a re-planned Plan (the same options as the first one). */
  readonly start: (plan: Plan, fabric: Fabric) => Promise<Deployment>;
  /** Stops server `i` of the NATS cluster (nats-server-kill). */
  readonly killNatsServer?: (server: number) => Promise<void>;
  /** The cluster's servers as `host:port`, by index (attribution of a lost connection). */
  readonly natsServers?: readonly string[];
  /** performance.now() at which the workload started (wall_ms triggers). */
  readonly wallT0: number;
  /** Sees faults injected, detected and recovered (metrics). */
  readonly observer?: FaultObserver;
  /** Request ids by workload index (request triggers). */
  readonly requestId: (index: number) => string;
  /** Tokens a request has so far (a trigger whose token has passed fires at once). */
  readonly tokensOf: (requestId: string) => number;
}

export class FaultCampaign implements FaultHooks {
  readonly records: FaultRecord[];
  private readonly faults: CampaignFault[];
  private next = 0;
  /** The fault whose window has not yet shown its effect. */
  private awaiting: {
    record: FaultRecord;
    fault: CampaignFault;
    firstStep: number;
    /** A fault from outside (host or server killed): the first window planned once the kill was done. */
    after?: number;
    killed?: boolean;
  } | null = null;
  /** Persistent link faults in force: re-armed in every window until their part is out of the Plan. */
  private readonly standing: { fault: CampaignFault }[] = [];
  /** Per kind of part, the part(s) the last failure named: the same again means a persistent fault. */
  private readonly seen = new Map<string, readonly string[]>();
  private fabric: Fabric;
  /** After a recovery no new fault fires until a window completes cleanly: a failure then is the last fault's. */
  private probation = false;
  /** The fault detected last: a repeat failure of its part (a persistent fault) updates its recovery. */
  private last: { record: FaultRecord; fault: CampaignFault } | null = null;
  /** A failure detected (failed()) and not yet recovered from. */
  private detected: Detected | null = null;

  constructor(
    private deployment: Deployment,
    private plan: Plan,
    private readonly o: CampaignOptions,
  ) {
    this.fabric = deployment.fabric;
    this.faults = [...o.faults];
    this.records = this.faults.map(recordOf);
  }

  get current(): Deployment {
    return this.deployment;
  }

  arm(view: WindowView): ArmedFaults | null {
    const frameFaults: ArmedFaults['frameFaults'][number][] = [];
    const chipFaults: ArmedFaults['chipFaults'][number][] = [];
    for (const s of this.standing) {
      const a = arm(s.fault.spec, s.fault.target, view.firstStep, this.plan, this.fabric);
      frameFaults.push(...a.frameFaults);
      chipFaults.push(...a.chipFaults);
    }
    const aw = this.awaiting;
    if (aw !== null && aw.killed === true && aw.after === undefined) aw.after = view.firstStep;
    let onStart: (() => void) | undefined;
    if (this.awaiting === null && !this.probation && this.next < this.faults.length) {
      const fault = this.faults[this.next];
      const i = this.dueStep(fault.spec, view);
      if (i >= 0) {
        this.next++;
        const record = this.records[this.next - 1];
        const step = view.firstStep + i;
        record.injected = { step, tick: view.starts[i], wallMs: performance.now() - this.o.wallT0 };
        if (!this.inPlan(fault.target)) {
          record.note = 'its target was retired by an earlier recovery before it fired';
        } else {
          const a = arm(fault.spec, fault.target, step, this.plan, this.fabric);
          frameFaults.push(...a.frameFaults);
          chipFaults.push(...a.chipFaults);
          this.awaiting = { record, fault, firstStep: view.firstStep };
          if (fault.spec.kind === 'link-down' || fault.spec.kind === 'link-degraded') this.standing.push({ fault });
          onStart = this.outside(fault, this.awaiting);
          logger().info({ fault: fault.spec.kind, target: fault.target.id, step }, 'fault injected');
          this.o.observer?.faultInjected(fault.spec.kind, { target: fault.target.id, tick: view.starts[i] });
        }
      }
    }
    if (frameFaults.length === 0 && chipFaults.length === 0 && onStart === undefined) return null;
    return { frameFaults, chipFaults, onStart };
  }

  /** Index in the window of the step the fault fires at, or -1 if it is not due yet. */
  private dueStep(spec: FaultSpec, view: WindowView): number {
    const at = spec.at;
    if ('tick' in at) {
      const i = view.starts.findIndex((t) => t >= at.tick);
      if (i >= 0) return i;
      return view.starts[view.starts.length - 1] >= at.tick ? view.starts.length - 1 : -1;
    }
    if ('wallMs' in at) return performance.now() - this.o.wallT0 >= at.wallMs ? 0 : -1;
    const id = this.o.requestId(at.request);
    if (this.o.tokensOf(id) > at.token) return 0;
    return view.outputs.findIndex((list) => list.some((o) => o.requestId === id && o.index >= at.token));
  }

  /** Faults outside the chips act once their window is on its way. */
  private outside(fault: CampaignFault, aw: { killed?: boolean }): (() => void) | undefined {
    const t = fault.target;
    let kill: (() => Promise<void>) | null = null;
    if (t.kind === 'host') kill = () => this.deployment.crashHost(t.id);
    if (t.kind === 'nats' && this.o.killNatsServer !== undefined) kill = () => this.o.killNatsServer!(t.server);
    if (kill === null) return undefined;
    const run = kill;
    return () =>
      void run()
        .catch((e: unknown) => logger().error({ err: e }, `${fault.spec.kind} failed`))
        .finally(() => (aw.killed = true));
  }

  /** Whether the fault's part still serves in the Plan. */
  private inPlan(t: Target): boolean {
    const node = (chip: number) => this.fabric.globalNodeOf(chip);
    const retired = new Set(this.plan.retired ?? []);
    if (t.kind === 'chip') return !retired.has(node(t.chip));
    if (t.kind === 'host') return !retired.has(t.node);
    if (t.kind === 'link') return !retired.has(node(t.chips[0])) && !retired.has(node(t.chips[1]));
    return true;
  }

  needsRecovery(result: WindowResult): boolean {
    if (detectViolations(result.violations, this.plan, this.fabric) !== null) return true;
    this.probation = false;
    const aw = this.awaiting;
    if (aw === null || result.samples.firstStep < aw.firstStep) return false;
    // the window that carried the fault completed without a schedule violation: later windows say nothing of
    // it, except for a host or server killed from outside, whose effect shows in windows run after the kill
    const outside = aw.fault.target.kind === 'host' || aw.fault.target.kind === 'nats';
    if (outside && (aw.after === undefined || result.samples.firstStep < aw.after)) return false;
    if (result.samples.firstStep !== aw.firstStep && !outside) return false;
    const ecc = detectEcc(result.ecc);
    if (ecc !== null) {
      aw.record.detected = { ...ecc, wallMs: this.wallNow(), attributed: this.matches(aw.fault, ecc) };
      aw.record.recovered = { action: 'corrected', wallMs: 0, virtualMs: 0, spare: null, reloadBytes: 0, replanMs: 0 };
      this.o.observer?.faultDetected(aw.fault.spec.kind, detectedAt(ecc));
      this.o.observer?.faultRecovered(aw.fault.spec.kind, 0, aw.record.recovered);
    } else if (result.ecc.some((e) => !e.ecc)) {
      aw.record.note = 'ECC off: the flipped bits went unnoticed (their effect on tokens is in the report)';
    } else {
      aw.record.note = outside
        ? 'no effect seen in a window run after it (nothing was lost)'
        : 'no effect seen in the window that carried it';
    }
    this.awaiting = null;
    return false;
  }

  private wallNow(): number {
    return performance.now() - this.o.wallT0;
  }

  private matches(fault: CampaignFault, d: Detection): boolean {
    const t = fault.target;
    if (t.kind === 'link' && d.part.kind === 'link') {
      return (d.part.candidates ?? [d.part.id]).includes(pairName(this.fabric, t.chips[0], t.chips[1]));
    }
    if (t.kind === 'nats') return d.part.kind === 'nats' && d.part.id === this.o.natsServers?.[t.server];
    return d.part.kind === t.kind && d.part.id === t.id;
  }

  /**
   * A window failed: what detected it, and which fault it was, are known (and reported) now; the
   * recovery waits until every window in flight has settled, which with hundreds of chips stalled
   * behind a dead one takes a few watchdog periods.
   */
  failed(failure: WindowFailure): void {
    this.detected = this.detect(failure);
  }

  private detect(failure: WindowFailure): Detected {
    const seen =
      failure.error !== null
        ? detectError(failure.error, this.plan, this.fabric)
        : detectViolations(failure.result!.violations, this.plan, this.fabric)!;
    const down = this.linkDown(seen.part);
    const detection: Detection = down === null ? seen : { ...seen, mechanism: 'link-status', part: down };
    let aw = this.awaiting;
    this.awaiting = null;
    let accumulate: { wallMs: number; virtualMs: number; replanMs: number } | null = null;
    if (aw !== null) {
      aw.record.detected = {
        ...detection,
        wallMs: failure.wallMs - this.o.wallT0,
        attributed: this.matches(aw.fault, detection),
        window: { firstStep: failure.firstStep, baseTick: failure.baseTick, steps: failure.steps },
      };
      this.o.observer?.faultDetected(aw.fault.spec.kind, detectedAt(detection));
      this.last = aw;
    } else if (this.last !== null && this.matches(this.last.fault, detection)) {
      // the same fault again: it is persistent, and this recovery is the rest of its recovery
      aw = { ...this.last, firstStep: failure.firstStep };
      accumulate = aw.record.recovered;
    } else {
      logger().warn({ part: detection.part }, `failure with no fault awaiting detection: ${detection.message}`);
    }
    return { failure, detection, down, aw, accumulate };
  }

  async recover(failure: WindowFailure): Promise<Recovered> {
    const known = this.detected?.failure === failure ? this.detected : this.detect(failure);
    this.detected = null;
    const { detection, down, aw, accumulate } = known;
    const { part, again } = down === null ? this.repeat(detection.part) : { part: down, again: true };
    // dead hardware, or a link whose status register shows it down or erring (read at the host's health poll)
    const dead =
      down !== null ||
      detection.mechanism === 'worker-exit' ||
      detection.mechanism === 'heartbeat' ||
      detection.mechanism === 'host-exit';
    const hz = this.plan.topology.chip.clock_mhz * 1e6;
    const injectedTick = accumulate === null ? (aw?.record.injected?.tick ?? failure.baseTick) : failure.baseTick;
    const detectTick = detection.tick >= 0 ? detection.tick : injectedTick;
    // a host notices a dead or silent chip at its next health poll (the SDK's interval)
    const pollSeconds = dead ? this.plan.topology.host.health_poll_interval_s : 0;
    const { action, spare, reloadBytes, reloadSeconds, replanSeconds } = await this.act(
      detection,
      part,
      dead || (again && detection.part.kind !== 'nats'),
    );
    const resyncTicks = this.plan.topology.sync.step_overhead_ticks;
    // the compiler's time is this machine's, not the hardware's: measured (replanMs), not charged
    const pauseSeconds = pollSeconds + reloadSeconds + resyncTicks / hz;
    // virtual recovery: from the fault to the system running again (detection, then the pause); the replayed
    // work shows in the requests' latencies
    const virtualMs = (Math.max(0, detectTick - injectedTick) / hz + pauseSeconds) * 1000;
    if (aw !== null) {
      aw.record.recovered = {
        action,
        wallMs: performance.now() - failure.wallMs + (accumulate?.wallMs ?? 0),
        virtualMs: virtualMs + (accumulate?.virtualMs ?? 0),
        spare,
        reloadBytes,
        replanMs: replanSeconds * 1000 + (accumulate?.replanMs ?? 0),
      };
      const r = aw.record.recovered;
      if (accumulate === null) this.o.observer?.faultRecovered(aw.fault.spec.kind, r.wallMs / 1000, r);
    }
    this.probation = true;
    logger().info({ action, part: detection.part, spare, virtual_ms: virtualMs }, 'recovered');
    return { deployment: this.deployment, plan: this.plan, pauseTicks: Math.round(pauseSeconds * hz) };
  }

  /** The recovery itself: re-plan onto a spare (`replanNow`), restart, reload, or resynchronise in place. */
  private async act(detection: Detection, part: Detection['part'], replanNow: boolean): Promise<Action> {
    let action: 'replan' | 'resync' | 'reload' = 'resync';
    let spare: string | null = null;
    let reloadBytes = 0;
    let reloadSeconds = 0;
    let replanSeconds = 0;
    if (replanNow) {
      action = 'replan';
      const r0 = performance.now();
      const r = replan(this.plan, this.retirement(part));
      replanSeconds = (performance.now() - r0) / 1000;
      const before = new Set((this.plan.substitutions ?? []).map((s) => s.spare));
      const added = r.substitutions.find((s) => !before.has(s.spare));
      spare =
        added === undefined
          ? null
          : `r${Math.floor(added.spare / this.fabric.nodesPerRack)}.n${added.spare % this.fabric.nodesPerRack}`;
      reloadBytes = r.reload.bytes;
      reloadSeconds = r.reload.seconds;
      await this.deployment.stop();
      this.deployment = await this.o.start(r.plan, r.fabric);
      this.plan = r.plan;
      this.fabric = r.fabric;
    } else if (detection.mechanism === 'ecc') {
      action = 'reload';
      const chip = this.fabric.chipIndex(detection.part.id);
      reloadBytes = this.plan.placement[chip]?.memory.weightBytes ?? 0;
      reloadSeconds = reloadBytes / (this.plan.topology.host.pcie_gbps * 1e9);
      await this.deployment.stop();
      this.deployment = await this.o.start(this.plan, this.fabric);
    }
    return { action, spare, reloadBytes, reloadSeconds, replanSeconds };
  }

  /**
   * A frame lost or late on a route that crosses a physical link which is down or degraded: the link's
   * status register says so (loss of signal, error counters), and the host reads it at its next health
   * poll, so the link is named exactly, not only the route (Detection.part.candidates).
   */
  private linkDown(part: Detection['part']): Detection['part'] | null {
    if (part.kind !== 'link') return null;
    const down = new Set(
      this.standing.flatMap(({ fault: { target: t } }) =>
        t.kind === 'link' ? [pairName(this.fabric, t.chips[0], t.chips[1])] : [],
      ),
    );
    const id = (part.candidates ?? [part.id]).find((l) => down.has(l));
    return id === undefined ? null : { kind: 'link', id };
  }

  /**
   * Whether the part failed before (then it is persistent), and the part narrowed to the one named
   * before: a link detection names every link of a frame's route (Detection.part.candidates).
   */
  private repeat(part: Detection['part']): { part: Detection['part']; again: boolean } {
    const names = part.candidates ?? [part.id];
    const before = this.seen.get(part.kind);
    const common = before === undefined ? [] : names.filter((n) => before.includes(n));
    this.seen.set(part.kind, names);
    if (common.length === 0) return { part, again: false };
    // a link: the ones both failures' routes crossed (the first of them, when several remain)
    return { part: { kind: part.kind, id: common[0], candidates: common }, again: true };
  }

  /** What a re-plan retires: the failed part's node while its rack has a spare, else (a link) only the link. */
  private retirement(part: Detection['part']): Retirement {
    const f = this.fabric;
    if (part.kind === 'host') return { nodes: [f.globalNodeOf(f.chipIndex(`${part.id}.c0`))] };
    if (part.kind === 'chip') return { nodes: [f.globalNodeOf(f.chipIndex(part.id))] };
    if (part.kind === 'link') {
      const [a, b] = (part.candidates?.[0] ?? part.id).split('-').map((id) => f.chipIndex(id));
      const node = f.globalNodeOf(a);
      return this.hasSpare(node) ? { nodes: [node], links: [[a, b]] } : { nodes: [], links: [[a, b]] };
    }
    throw new RunError('RACKEMU_ERR_RECOVERY', `nothing to re-plan for ${part.kind} ${part.id}`);
  }

  private hasSpare(node: number): boolean {
    const f = this.fabric;
    const rack = Math.floor(node / f.nodesPerRack);
    const gone = new Set(this.plan.retired ?? []);
    const used = new Set((this.plan.substitutions ?? []).map((s) => s.spare));
    for (let n = rack * f.nodesPerRack; n < (rack + 1) * f.nodesPerRack; n++) {
      if (f.isSpare(n * f.chipsPerNode) && !gone.has(n) && !used.has(n)) return true;
    }
    return false;
  }

  /**
   * A fault injected into a live deployment (POST /admin/faults): checked against the Plan now running,
   * then fired like a campaign's; returns its index in `records`.
   */
  inject(spec: FaultSpec, where: string, natsServers = 0): number {
    const target = resolveTarget(spec, this.plan, this.fabric, natsServers, where);
    const fault: CampaignFault = { spec, target, where };
    this.faults.push(fault);
    this.records.push(recordOf(fault));
    return this.records.length - 1;
  }

  /** Faults still to fire when the workload ended. */
  finish(): void {
    for (let i = this.next; i < this.records.length; i++)
      this.records[i].note ??= 'the workload ended before it was due';
    if (this.awaiting !== null) this.awaiting.record.note ??= 'no effect seen before the workload ended';
  }
}

/** A window's failure: what detected it, and the fault it was. */
interface Detected {
  readonly failure: WindowFailure;
  readonly detection: Detection;
  /** The link found down by its status register, when the failure crossed one. */
  readonly down: Detection['part'] | null;
  /** The fault it was (null: none awaited detection). */
  readonly aw: { record: FaultRecord; fault: CampaignFault; firstStep: number } | null;
  /** A persistent fault's recovery so far: this recovery adds to it. */
  readonly accumulate: { wallMs: number; virtualMs: number; replanMs: number } | null;
}

function detectedAt(d: Detection): FaultDetectedAt {
  return { mechanism: d.mechanism, part: d.part, tick: d.tick >= 0 ? d.tick : null };
}

function recordOf(f: CampaignFault): FaultRecord {
  return {
    kind: f.spec.kind,
    target: f.target.id,
    where: f.where,
    injected: null,
    detected: null,
    recovered: null,
    note: null,
  };
}

interface Action {
  readonly action: 'replan' | 'resync' | 'reload';
  /** The spare node that took over (`r<rack>.n<node>`), if one did. */
  readonly spare: string | null;
  readonly reloadBytes: number;
  readonly reloadSeconds: number;
  readonly replanSeconds: number;
}
