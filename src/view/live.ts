import type { Plan } from '../compiler/plan.js';
import type { CompletionResult, EngineObserver } from '../control/engine-types.js';
import type { FaultDetectedAt, FaultInjectedAt, FaultObserver, FaultRecoveredAt } from '../control/metrics-faults.js';
import type { FaultKind } from '../faults/types.js';
import type { Fabric } from '../topology/fabric.js';
import { viewLayout } from './layout.js';
import {
  SUMMARY_REQUESTS,
  TIMELINE_STEPS,
  type ChipStateCode,
  type ViewFaultEvent,
  type ViewLayout,
  type ViewStep,
  type ViewSummary,
  type ViewUpdate,
} from './protocol.js';

/** Fault events an update carries at most (the latest). */
const MAX_FAULT_EVENTS = 64;
/**
 * Chip activity is over the steps reported in the last ACTIVITY_MS of wall time: the engine reports a
 * window of steps (64 by default) when it completes, which under load on this machine is every 0.2 to
 * 1 s, so a shorter window would show busy chips flickering idle between windows.
 */
export const ACTIVITY_MS = 1500;

type StepRan = Parameters<NonNullable<EngineObserver['stepRan']>>[0];

/**
 * The rack view's state: what the page shows, fed by the same observer calls as the Prometheus
 * metrics (the engine's EngineObserver, the fault campaign's FaultObserver) and by each Plan the
 * deployment runs. `update()` returns what changed since the last call; it is the only reader, so
 * many pages share one stream of updates (routes.ts). Nothing here is on the frame path: the engine
 * reports steps per window, and a chip's activity in a step is read off its Plan, which fixes it
 * tick by tick (the hardware is deterministic: every decode step of a Plan is the same).
 */
export class RackView implements EngineObserver, FaultObserver {
  private layoutNow: ViewLayout | null = null;
  private planId = 0;
  private readonly t0: number;
  /** Steps run since the last update, by kind. */
  private ran = { prefill: 0, decode: 0 };
  /** Steps run in each of the last updates (wall ms at the update), for the activity window. */
  private recentRuns: { wallMs: number; prefill: number; decode: number }[] = [];
  private pendingSteps: ViewStep[] = [];
  private pendingFaults: ViewFaultEvent[] = [];
  private stepsRun = 0;
  private running = 0;
  private waiting = 0;
  private finished = 0;
  private readonly recent: CompletionResult[] = [];
  private readonly faultCounts = { injected: 0, detected: 0, recovered: 0 };
  /** Chips found dead (a chip or its host failed), by index. */
  private readonly dead = new Set<number>();
  /** Chips taking over a retired node's work, until the recovery is done. */
  private recovering = new Set<number>();
  /** Between a fault's detection and its recovery. */
  private inRecovery = false;
  /** The Plan the deployment runs, and its fabric. */
  private deployed: { plan: Plan; fabric: Fabric } | null = null;

  constructor(
    private readonly fidelity: string,
    /** The wall clock in ms (performance.now; tests pass their own). */
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.t0 = clock();
  }

  /** The Plan the deployment runs (at start-up, and as a recovery starts the re-planned one). */
  setPlan(plan: Plan, fabric: Fabric): void {
    const before = this.layoutNow;
    this.deployed = { plan, fabric };
    this.layoutNow = viewLayout(plan, fabric, this.fidelity, ++this.planId);
    if (before !== null && this.inRecovery) {
      // the chips that now hold work they did not hold before: a spare node standing in for a retired one
      this.recovering = new Set();
      this.layoutNow.chips.forEach((c, i) => {
        const was = before.chips[i]?.role;
        if (c.role !== 'idle' && c.role !== 'spare' && (was === 'spare' || was === 'idle')) this.recovering.add(i);
      });
    }
  }

  get layout(): ViewLayout | null {
    return this.layoutNow;
  }

  /** The Plan the deployment runs, and its fabric. */
  get current(): { readonly plan: Plan; readonly fabric: Fabric } | null {
    return this.deployed;
  }

  stepRan(s: StepRan): void {
    this.ran[s.kind]++;
    this.stepsRun++;
    const ticks = Math.round(s.virtualSeconds * (this.layoutNow?.clockMhz ?? 0) * 1e6);
    this.pendingSteps.push({
      step: s.step ?? this.stepsRun - 1,
      kind: s.kind,
      tick: s.tick ?? -1,
      ticks,
      activeRows: s.activeRows,
      rows: s.rows,
    });
    if (this.pendingSteps.length > 2 * TIMELINE_STEPS) this.pendingSteps = this.pendingSteps.slice(-TIMELINE_STEPS);
  }

  setRequests(running: number, waiting: number): void {
    this.running = running;
    this.waiting = waiting;
  }

  requestFinished(result: CompletionResult): void {
    this.finished++;
    this.recent.push(result);
    if (this.recent.length > SUMMARY_REQUESTS) this.recent.shift();
  }

  faultInjected(kind: FaultKind, at?: FaultInjectedAt): void {
    this.faultCounts.injected++;
    this.event('injected', kind, at?.target ?? '', at?.tick ?? null, '');
  }

  faultDetected(kind: FaultKind, at?: FaultDetectedAt): void {
    this.faultCounts.detected++;
    this.inRecovery = true;
    if (at !== undefined && this.deployed !== null) {
      const f = this.deployed.fabric;
      if (at.part.kind === 'chip') this.markDead([f.chipIndex(at.part.id)]);
      if (at.part.kind === 'host') {
        const first = f.chipIndex(`${at.part.id}.c0`);
        this.markDead(Array.from({ length: f.chipsPerNode }, (_, c) => first + c));
      }
    }
    const detail = at === undefined ? '' : `${at.mechanism}: ${at.part.kind} ${at.part.id}`;
    this.event('detected', kind, at?.part.id ?? '', at?.tick ?? null, detail);
  }

  faultRecovered(kind: FaultKind, wallSeconds: number, at?: FaultRecoveredAt): void {
    this.faultCounts.recovered++;
    this.inRecovery = false;
    this.recovering = new Set();
    const detail =
      at === undefined
        ? `${(wallSeconds * 1000).toFixed(0)} ms wall`
        : `${at.action}${at.spare ? ` onto ${at.spare}` : ''}: ${at.virtualMs.toFixed(1)} ms virtual, ` +
          `${(wallSeconds * 1000).toFixed(0)} ms wall`;
    this.event('recovered', kind, at?.spare ?? '', null, detail);
  }

  private markDead(chips: readonly number[]): void {
    for (const c of chips) if (c >= 0) this.dead.add(c);
  }

  private event(what: ViewFaultEvent['what'], kind: string, target: string, tick: number | null, detail: string) {
    this.pendingFaults.push({ what, kind, target, tick, detail, wallMs: this.clock() - this.t0 });
    if (this.pendingFaults.length > MAX_FAULT_EVENTS) this.pendingFaults.shift();
  }

  /** What changed since the last call; null before the first Plan. */
  update(): ViewUpdate | null {
    const layout = this.layoutNow;
    if (layout === null) return null;
    const now = this.clock() - this.t0;
    this.recentRuns.push({ wallMs: now, ...this.ran });
    this.recentRuns = this.recentRuns.filter((r) => r.wallMs > now - ACTIVITY_MS);
    const { states, busy } = this.chipStates(layout);
    const out: ViewUpdate = {
      planId: layout.planId,
      wallMs: now,
      states,
      busy,
      steps: this.pendingSteps.slice(-TIMELINE_STEPS),
      faults: this.pendingFaults,
      summary: this.summary(),
    };
    this.ran = { prefill: 0, decode: 0 };
    this.pendingSteps = [];
    this.pendingFaults = [];
    return out;
  }

  /** Each chip's state and busy share over the steps run in the last ACTIVITY_MS (idle when none ran). */
  private chipStates(layout: ViewLayout): { states: string; busy: string } {
    const { prefill, decode } = layout.steps;
    let p = 0;
    let d = 0;
    for (const r of this.recentRuns) {
      p += r.prefill;
      d += r.decode;
    }
    const wp = p * prefill.lengthTicks;
    const wd = d * decode.lengthTicks;
    const total = wp + wd;
    let states = '';
    let busy = '';
    layout.chips.forEach((c, i) => {
      let code: ChipStateCode;
      let level = 0;
      if (this.dead.has(i)) code = 'f';
      else if (this.recovering.has(i)) code = 'r';
      else if (c.role === 'spare') code = 'p';
      else if (c.role === 'idle' || total === 0)
        code = 'i'; // a retired chip beside a dead one is idle
      else {
        const compute = (c.prefill.compute * wp + c.decode.compute * wd) / total;
        const send = (c.prefill.send * wp + c.decode.send * wd) / total;
        code = compute === 0 && send === 0 ? 'i' : compute >= send ? 'c' : 's';
        level = Math.min(9, Math.ceil(9 * Math.min(1, compute + send)));
      }
      states += code;
      busy += String(level);
    });
    return { states, busy };
  }

  private summary(): ViewSummary {
    const r = this.recent;
    const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
    const multi = r.filter((x) => x.tokenIds.length > 1);
    const tpot = mean(multi.map((x) => x.virtual.tpotMs));
    const wall = mean(multi.map((x) => (x.wall.e2eMs - x.wall.ttftMs) / (x.tokenIds.length - 1)));
    return {
      measured:
        r.length === 0
          ? null
          : {
              requests: r.length,
              ttftMs: mean(r.map((x) => x.virtual.ttftMs))!,
              tpotMs: tpot,
              tokensPerSPerUser: tpot === null || tpot === 0 ? null : 1000 / tpot,
              wallMsPerToken: wall,
            },
      running: this.running,
      waiting: this.waiting,
      finished: this.finished,
      stepsRun: this.stepsRun,
      faults: { ...this.faultCounts },
    };
  }
}
