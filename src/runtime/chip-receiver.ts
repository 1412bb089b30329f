import type { RecvInstruction } from '../compiler/plan.js';
import { decodeFrame, type DecodedFrame } from '../transport/frame.js';
import { bundleCount, bundleFrames } from '../transport/bundle.js';
import { RunError } from '../util/errors.js';
import type { ChipInit, DueFrame } from './chip-types.js';
import { FrameInbox, frameKey, type ExpectedFrame } from './frame-inbox.js';
import type { StepInstance } from './run-spec.js';
import { stepRecvs, TimingReceiver, type RecvSlot } from './timing-receiver.js';
import type { ViolationLog } from './violation-log.js';

/** Timing fidelity: the run steps [from, to) whose frames the chip waits for on the event loop. */
interface WindowWait {
  readonly from: number;
  readonly to: number;
  missing: number;
  readonly since: number;
  readonly resolve: () => void;
}

/**
 * The receive side of one chip: the handler of every frame and bundle its endpoint delivers, and
 * the record of which frames its run has received. Timing fidelity checks frames by their bytes
 * (TimingReceiver) and decodes only those that differ from what the schedule says comes next; numeric
 * fidelity decodes every frame into the inbox, where its Program's receives take them. A frame is
 * checked as it arrives: a duplicate, late or unexpected one is recorded in the violation log; a
 * corrupt or undecodable one ends the run through `abort`. Never throws into the transport.
 */
export class ChipReceiver {
  readonly inbox = new FrameInbox();
  /** Timing fidelity: the byte-level ledger of the run's frames (null in numeric fidelity). */
  readonly timing: TimingReceiver | null;
  /** Frames whose header was decoded since the last takeDecoded(). */
  private decoded = 0;
  /** Timing fidelity: bundles that arrived before this chip's run began, in arrival order. */
  private early: { readonly bundle: Uint8Array; readonly src: string }[] = [];
  private window: WindowWait | null = null;
  private firstStep = 0;
  /** The step after the run's last. */
  private endStep = 0;
  /** The previous run failed: frames of steps before this run's are its leftovers, dropped. */
  private dropEarlier = false;

  constructor(
    private readonly init: ChipInit,
    private readonly log: ViolationLog,
    private readonly abort: (e: RunError) => void,
  ) {
    const recvs = (kind: 'prefill' | 'decode') =>
      stepRecvs(init.program[kind].instructions, init.tensors[kind], init.peers, init.chipId);
    this.timing =
      init.fidelity === 'timing' ? new TimingReceiver({ prefill: recvs('prefill'), decode: recvs('decode') }) : null;
  }

  /**
   * A run of `steps` begins. Timing fidelity: its senders send in windows of `windowSteps` steps, and
   * frames and bundles that came before it are placed now. `dropEarlier`: the previous run failed, so
   * frames of its steps still held or still arriving are dropped.
   */
  beginRun(steps: readonly StepInstance[], windowSteps: number, dropEarlier: boolean): void {
    this.firstStep = steps[0].index;
    this.endStep = steps[steps.length - 1].index + 1;
    this.dropEarlier = dropEarlier;
    this.window = null;
    this.inbox.beginRun(this.firstStep, dropEarlier);
    if (this.timing === null) return;
    this.timing.begin(steps, windowSteps);
    this.inbox.adopt((frame, src) => this.placeTiming(frame, src));
    const early = this.early;
    this.early = [];
    for (const { bundle, src } of early) {
      if (this.onBundle(bundle, src)) continue;
      // not what the run expects next from src: frame by frame, as the transport would have delivered it
      const malformed = (cause: Error) =>
        this.abort(
          new RunError('RACKEMU_ERR_TRANSPORT', `${this.init.chipId}: a malformed bundle from ${src}`, { cause }),
        );
      for (const f of bundleFrames(bundle, malformed)) this.onFrame(f, src);
    }
  }

  /**
   * The run ended (or failed): frames still held are unexpected (a sender with a wrong Program, or a misrouted frame).
   */
  endRun(reportLeftovers: boolean): void {
    this.timing?.end();
    this.window = null;
    const left = this.inbox.leftovers(this.endStep);
    if (reportLeftovers) for (const f of left) this.log.unexpected(f.step, f.tensor, f.src);
  }

  /**
   * Frames decoded since the last call (counted from the end of the last run: frames decoded before a run began are
   * its).
   */
  takeDecoded(): number {
    const n = this.decoded;
    this.decoded = 0;
    return n;
  }

  /** Timing fidelity: a window's bundle from `src` is taken whole if it is exactly what the schedule says. */
  readonly onBundle = (bundle: Uint8Array, src: string): boolean => {
    const t = this.timing;
    if (t === null) return false;
    if (!t.active || t.peerDone(src)) {
      // before this chip's run began, or for its next run (its peers started first): kept whole until
      // that run begins
      this.early.push({ bundle: bundle.slice(), src });
      return true;
    }
    const s = t.acceptBundle(bundle, src);
    if (s < 0) return false;
    this.arrived(s, bundleCount(bundle));
    return true;
  };

  readonly onFrame = (frame: Uint8Array, src: string): void => {
    const t = this.timing;
    if (t !== null && t.active) {
      const s = t.accept(frame, src);
      if (s >= 0) {
        this.arrived(s, 1);
        return;
      }
    }
    let decoded: DecodedFrame;
    this.decoded++;
    try {
      decoded = decodeFrame(frame, { verify: this.init.fidelity === 'numeric' });
    } catch (cause) {
      this.abort(this.log.undecodable(src, cause));
      return;
    }
    const h = decoded.header;
    if (this.dropEarlier && h.step < this.firstStep) return;
    if (t !== null && t.active && this.placeTiming(decoded, src)) return;
    if (this.inbox.put(decoded, src) === 'duplicate') this.log.duplicate(h.step, h.tensor, src, h.tick);
  };

  /**
   * Timing fidelity, a decoded frame: if the run expects it, records it (a duplicate or late frame is a
   * violation) and returns true; otherwise false (the inbox holds it; unexpected at the run's end).
   */
  private placeTiming(d: DecodedFrame, src: string): boolean {
    const t = this.timing!;
    const h = d.header;
    const at = t.locate(h, src);
    if (at === null) return false;
    if (!t.mark(at.step, at.slot, h.seq)) {
      this.log.duplicate(h.step, h.tensor, src, h.tick);
      return true;
    }
    const fatal = this.log.check(this.due(at.step, at.slot), d);
    if (fatal !== null) this.abort(fatal);
    this.arrived(at.step, 1);
    return true;
  }

  /**
   * Timing fidelity: `frames` frames of run step `s` (or of its window) arrived; ends the event-loop wait when its
   * window is complete.
   */
  private arrived(s: number, frames: number): void {
    const w = this.window;
    if (w !== null && s >= w.from && s < w.to && (w.missing -= frames) === 0) {
      this.window = null;
      w.resolve();
    }
  }

  /** The absolute step and ticks of a timing receive slot in run step `s`. */
  private due(s: number, slot: RecvSlot): DueFrame {
    const st = this.timing!.runSteps[s];
    return {
      step: st.index,
      tensor: slot.tensor,
      src: slot.src,
      tick: st.base + slot.tick,
      needBy: st.base + slot.needBy,
    };
  }

  /** Timing fidelity: frames of run steps [from, to) still to arrive. */
  missingInWindow(from: number, to: number): number {
    return this.timing!.missing(from, to);
  }

  /** Timing fidelity: the earliest-due frame of run steps [from, to) still to arrive (there must be one). */
  firstMissing(from: number, to: number): DueFrame {
    const at = this.timing!.firstMissing(from, to)!;
    return this.due(at.step, at.slot);
  }

  /** Timing fidelity, on the event loop: resolves once every frame of run steps [from, to) has arrived. */
  waitWindow(from: number, to: number): Promise<void> {
    const missing = this.timing!.missing(from, to);
    if (missing === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.window = { from, to, missing, since: Date.now(), resolve }));
  }

  /**
   * The event-loop wait (a numeric receive or a timing window) that has lasted `limitMs` or more: the frame it misses.
   */
  overdue(now: number, limitMs: number): DueFrame | null {
    const e = this.inbox.overdue(now, limitMs);
    if (e !== null) return e;
    const w = this.window;
    return w !== null && now - w.since >= limitMs ? this.firstMissing(w.from, w.to) : null;
  }

  /** Numeric fidelity: the frame a recv instruction of `step` takes. */
  expected(ins: RecvInstruction, step: StepInstance): ExpectedFrame {
    const name = this.init.tensors[step.kind][ins.tensor].name;
    const src = this.init.peers[ins.from];
    return {
      key: frameKey(step.index, name, src),
      step: step.index,
      tensorId: ins.tensor,
      tensor: name,
      src,
      tick: step.base + ins.tick,
      needBy: step.base + ins.needBy,
    };
  }
}
