import type { RecvInstruction, SendInstruction } from '../compiler/plan.js';
import { tensorView, type DecodedFrame } from '../transport/frame.js';
import type { ChipEndpoint } from '../transport/index.js';
import { RunError } from '../util/errors.js';
import { ChipFaults } from './chip-faults.js';
import { ChipKernels } from './chip-kernels.js';
import { ChipReceiver } from './chip-receiver.js';
import { ChipSender, type TensorValue } from './chip-sender.js';
import type { ChipInit, ChipRunResult, PerStepKind, StepSamples } from './chip-types.js';
import type { ChipWeights } from './chip-weights.js';
import type { ExpectedFrame } from './frame-inbox.js';
import {
  DEFAULT_LOOKAHEAD_STEPS,
  microBatchPart,
  windowSteps,
  type FrameFault,
  type RunSpec,
  type StepInstance,
} from './run-spec.js';
import { ViolationLog } from './violation-log.js';
import { pollUntil, watchdogIntervalMs } from './watchdog.js';

/**
 * One emulated chip: the executor of its Program over its SRAM (ChipKernels), its receive side
 * (ChipReceiver) and its send side (ChipSender). Instructions run in tick order; a receive waits (in
 * wall time) for its frame, which may have arrived early and waits in a buffer. Virtual time never
 * depends on wall time: as on the hardware, every instruction happens at the tick the Program gives it
 * (step base + tick), and each frame carries the virtual tick it arrives at. A frame that arrives after
 * the tick its first consumer needs it is a schedule violation: counted and reported with chip ids and
 * ticks. The emulator still hands the consumer the right values (it waited in wall time), so one fault
 * shows up as one violation, not as a cascade, and the timeline stays the compiler's.
 *
 * Wall-clock order (docs/runtime.md, "Lockstep execution"): in numeric fidelity a chip waits for a
 * frame when its Program receives it (values flow, so the order is causal), and for a run of
 * consecutive receives it is woken once, when all of them are in. In timing fidelity no value flows:
 * like the hardware, which fires every send at its tick without waiting for anything, a chip issues a
 * step's sends at once and checks the step's receives later, up to `lookaheadSteps` steps behind
 * (look-ahead from the known schedule). Every frame still crosses the transport and is checked
 * (tick, checksum, duplicates, missing); virtual times and counts are the same either way.
 */
export class ChipRuntime {
  private endpoint: ChipEndpoint | null = null;
  private sender: ChipSender | null = null;
  private readonly log: ViolationLog;
  private readonly receiver: ChipReceiver;
  /** Numeric fidelity only: timing fidelity computes nothing (and holds no KV cache). */
  private readonly kernels: ChipKernels | null;
  /** Per step kind, the end tick of the sampler's `next` op (-1 on other chips). */
  private readonly tokenEnd: PerStepKind<number>;
  /** Sampler, numeric fidelity: each batch slot's last sampled id, the input of its next decode step. */
  private readonly lastIds: Int32Array;
  private fatal: RunError | null = null;
  private failRun: ((e: RunError) => void) | null = null;
  /** A failure between runs (a lost transport connection): the next run reports it, since frames may be lost. */
  private unreported: RunError | null = null;
  /** This run's chip faults (fault campaigns). */
  private faults: ChipFaults;

  constructor(
    readonly init: ChipInit,
    private readonly weights: ChipWeights,
    /** Called while the chip is alive in a run (at least every second), for its host's hang detection. */
    private readonly beat: () => void = () => undefined,
  ) {
    this.log = new ViolationLog(init.chipId);
    this.receiver = new ChipReceiver(init, this.log, (e) => this.abort(e));
    this.kernels = init.fidelity === 'numeric' ? new ChipKernels(init, weights) : null;
    // a step's ids are all known when its last micro-batch's `next` is
    const tokenEnd = (kind: 'prefill' | 'decode') => {
      const next = init.sampler?.next[kind] ?? [];
      let end = -1;
      for (const ins of init.program[kind].instructions)
        if (ins.kind === 'compute' && next.includes(ins.output)) end = Math.max(end, ins.end);
      return end;
    };
    this.tokenEnd = { prefill: tokenEnd('prefill'), decode: tokenEnd('decode') };
    this.lastIds = new Int32Array(init.batch);
    this.faults = new ChipFaults(init.chipId, [], null, this.log);
  }

  /** lm_head chips: the logits slice of the most recent step (host readback for the final logits). */
  get lastLogits(): { start: number; logits: Float32Array } | null {
    return this.kernels?.lastLogits ?? null;
  }

  attach(endpoint: ChipEndpoint): void {
    this.endpoint = endpoint;
    this.sender = new ChipSender(this.init, endpoint);
    endpoint.onFrame(this.receiver.onFrame);
    endpoint.onBundle(this.receiver.onBundle);
    // the transport's details (the server a connection lost, the peer a publish failed for) name the part
    endpoint.onError((err) =>
      this.abort(
        new RunError('RACKEMU_ERR_TRANSPORT', `${this.init.chipId}: transport failed: ${err.message}`, {
          cause: err,
          details: { ...err.details },
        }),
      ),
    );
  }

  private abort(e: RunError): void {
    if (this.fatal) return;
    this.fatal = e;
    if (this.failRun === null) this.unreported = e;
    this.failRun?.(e);
  }

  /**
   * Runs a window of steps. The sampler reports what each step sampled in the result and, with
   * `onSamples`, as steps complete (numeric: after each step; timing: after each look-ahead window).
   */
  async run(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<ChipRunResult> {
    if (this.unreported !== null) {
      const e = this.unreported;
      this.unreported = null;
      throw e;
    }
    const steps = windowSteps(spec.window, this.init, this.init.stepLengths);
    this.log.reset();
    this.sender!.resetCounts();
    // A run starts clean after a failed one too: that run's error went out with it, and what is left
    // of it (frames of its steps still buffered, in flight or held) is dropped when it shows up here.
    // After a run that succeeded nothing of it can be left, so such a frame stays a violation.
    const dropEarlier = this.fatal !== null;
    this.fatal = null;
    // credit owed for the failed run's lost frames never comes back
    if (dropEarlier) this.endpoint?.resetFlow?.();
    // Look-ahead windows of lookahead + 1 steps (timing fidelity): see runTiming.
    const windowSize = Math.max(0, spec.lookaheadSteps ?? DEFAULT_LOOKAHEAD_STEPS) + 1;
    const failed = new Promise<never>((_, reject) => (this.failRun = reject));
    failed.catch(() => undefined);
    const timer = setInterval(() => this.checkWatchdog(), watchdogIntervalMs(this.init.watchdogMs));
    this.faults = new ChipFaults(
      this.init.chipId,
      spec.chipFaults,
      this.init.fidelity === 'numeric' ? this.weights : null,
      this.log,
    );
    const isSampler = this.init.sampler !== null;
    const batch = this.init.batch;
    const ticks: number[] = [];
    const ids = isSampler && this.kernels !== null ? new Int32Array(steps.length * batch) : null;
    const report: SampleSink = (i, stepTicks, stepIds) => {
      for (const t of stepTicks) ticks.push(t);
      if (ids !== null && stepIds !== null) ids.set(stepIds, i * batch);
      if (isSampler && onSamples)
        onSamples({ firstStep: steps[i].index, ticks: stepTicks, ids: stepIds && Int32Array.from(stepIds) });
    };
    let ok = false;
    try {
      this.receiver.beginRun(steps, windowSize, dropEarlier);
      const faults = this.faults.none ? (spec.faults ?? []) : [...this.faults.frameFaults(), ...(spec.faults ?? [])];
      if (this.init.fidelity === 'timing') await this.runTiming(steps, windowSize, faults, failed, report);
      else await this.runNumeric(steps, faults, failed, report);
      ok = true;
    } finally {
      this.receiver.endRun(ok);
      this.endpoint?.uncork();
      clearInterval(timer);
      this.failRun = null;
    }
    return {
      chipId: this.init.chipId,
      violations: this.log.recorded,
      framesSent: this.sender!.framesSent,
      bytesSent: this.sender!.bytesSent,
      framesDecoded: this.receiver.takeDecoded(),
      samples: isSampler ? { firstStep: steps[0].index, ticks, ids } : null,
      ecc: this.faults.ecc,
    };
  }

  /**
   * Timing fidelity, in look-ahead windows of `windowSize` steps: a chip issues a window's sends,
   * then checks its receives; it sleeps once per window, not once per step, and is woken (FRAMES/WANT)
   * only once all the frames it misses could be in. The chips thus move in epochs of windows.
   */
  private async runTiming(
    steps: readonly StepInstance[],
    windowSize: number,
    faults: readonly FrameFault[],
    failed: Promise<never>,
    report: SampleSink,
  ): Promise<void> {
    const ep = this.endpoint!;
    const run = this.receiver.timing!.timeline;
    for (let from = 0; from < steps.length;) {
      if (this.fatal) throw this.fatal;
      const to = Math.min(steps.length, from + windowSize);
      if (!this.faults.none) for (let i = from; i < to; i++) this.faults.atStep(steps[i].index, steps[i].base);
      // the window's frames leave together at uncork, before the chip waits for its own
      ep.cork();
      this.sender!.sendWindow(run, from, to, faults);
      ep.uncork();
      if (ep.pollSync) {
        pollUntil(
          ep,
          this.init.watchdogMs,
          () => this.alive(),
          () => this.receiver.missingInWindow(from, to),
          () => this.missing(this.receiver.firstMissing(from, to)),
        );
      } else {
        await Promise.race([this.receiver.waitWindow(from, to), failed]);
      }
      const ticks: number[] = [];
      for (let i = from; i < to; i++) {
        const end = this.tokenEnd[steps[i].kind];
        ticks.push(end < 0 ? 0 : steps[i].base + end);
      }
      report(from, ticks, null);
      from = to;
    }
  }

  /** Numeric fidelity: step after step, each waiting for the values it receives. */
  private async runNumeric(
    steps: readonly StepInstance[],
    faults: readonly FrameFault[],
    failed: Promise<never>,
    report: SampleSink,
  ): Promise<void> {
    for (const [i, step] of steps.entries()) {
      if (!this.faults.none) this.faults.atStep(step.index, step.base);
      const out = await Promise.race([this.runStep(step, faults), failed]);
      report(i, [out.tick], out.ids);
    }
  }

  /** Numeric fidelity: the Program in order, each run of receives waited for together. */
  private async runStep(step: StepInstance, faults: readonly FrameFault[]): Promise<StepOutput> {
    const prog = this.init.program[step.kind].instructions;
    const values = new Map<number, TensorValue>();
    const sampler = this.init.sampler;
    let nextTick = 0;
    if (sampler) {
      // micro-batch m's tok holds the ids of its own slots
      const tok = step.inputIds ?? this.decodeInputs(step);
      const toks = sampler.tok[step.kind];
      toks.forEach((id, m) => values.set(id, microBatchPart(tok, m, toks.length).slice()));
    }
    for (let i = 0; i < prog.length; i++) {
      const ins = prog[i];
      if (ins.kind === 'recv') {
        const group: ExpectedFrame[] = [];
        for (let j = i; j < prog.length && prog[j].kind === 'recv'; j++) {
          group.push(this.receiver.expected(prog[j] as RecvInstruction, step));
        }
        const got = this.takeAll(group);
        const frames = Array.isArray(got) ? got : await got;
        group.forEach((e, k) => {
          const fatal = this.log.check(e, frames[k]);
          if (fatal !== null) throw fatal;
          values.set(e.tensorId, tensorView(frames[k]) ?? null);
        });
        i += group.length - 1;
      } else if (ins.kind === 'compute') {
        values.set(ins.output, this.kernels!.compute(ins, step, values));
        if (sampler?.next[step.kind].includes(ins.output)) nextTick = Math.max(nextTick, step.base + ins.end);
      } else {
        // A run of consecutive sends leaves together: one message per destination (cork).
        const ep = this.endpoint!;
        ep.cork();
        for (; i < prog.length && prog[i].kind === 'send'; i++) {
          const snd = prog[i] as SendInstruction;
          this.sender!.send(snd, step, values.get(snd.tensor) ?? null, faults);
        }
        i--;
        ep.uncork();
      }
    }
    if (!sampler) return { ids: null, tick: 0 };
    const ids = new Int32Array(this.lastIds.length);
    const nexts = sampler.next[step.kind];
    nexts.forEach((id, m) => microBatchPart(ids, m, nexts.length).set(values.get(id) as Int32Array));
    for (let b = 0; b < this.lastIds.length; b++) if (step.slotRows[b] > 0) this.lastIds[b] = ids[b];
    return { ids, tick: nextTick };
  }

  /** The sampler's `tok` of a decode step: each running slot's last sampled id (idle slots 0). */
  private decodeInputs(step: StepInstance): Int32Array {
    const tok = new Int32Array(this.lastIds.length);
    for (let b = 0; b < tok.length; b++) if (step.slotRows[b] > 0) tok[b] = this.lastIds[b];
    return tok;
  }

  /**
   * The frames of `group`, in order, waiting (in wall time) until all have arrived. On the
   * shared-memory transport the thread blocks in the transport and is woken once, when as many
   * frames as are missing have come in; otherwise it awaits them one by one on the event loop.
   */
  private takeAll(group: readonly ExpectedFrame[]): DecodedFrame[] | Promise<DecodedFrame[]> {
    const ep = this.endpoint!;
    const inbox = this.receiver.inbox;
    if (ep.pollSync) {
      pollUntil(
        ep,
        this.init.watchdogMs,
        () => this.alive(),
        () => inbox.absent(group),
        () => this.missing(group.filter((e) => !inbox.has(e.key)).reduce((a, e) => (e.tick < a.tick ? e : a))),
      );
      return group.map((e) => inbox.take(e)!);
    }
    return (async () => {
      const out: DecodedFrame[] = [];
      for (const e of group) out.push(await inbox.wait(e));
      return out;
    })();
  }

  /** Wall-clock watchdog of the event-loop waits: one that lasted watchdogMs ends the run with its missing frame. */
  private checkWatchdog(): void {
    this.beat();
    const due = this.receiver.overdue(Date.now(), this.init.watchdogMs);
    if (due !== null) this.missing(due);
  }

  /** The run's fatal error so far, if any; polled in blocking waits, which also tell the host the chip is alive. */
  private alive(): RunError | null {
    this.beat();
    return this.fatal;
  }

  /**
   * Records a missing frame and ends the run with RACKEMU_ERR_WATCHDOG; returns the error for the polling path to
   * throw.
   */
  private missing(due: Parameters<ViolationLog['missing']>[0]): RunError {
    this.abort(this.log.missing(due, this.init.watchdogMs));
    return this.fatal!;
  }
}

/** Where a run's loop reports what steps from run step `i` on sampled: their ticks, and ids (numeric, one step). */
type SampleSink = (i: number, ticks: number[], ids: Int32Array | null) => void;

/** What a numeric step leaves for the next: the sampled ids (sampler only) and the tick they were known. */
interface StepOutput {
  readonly ids: Int32Array | null;
  readonly tick: number;
}
