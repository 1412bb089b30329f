import type { Kernel, Tensor } from '../compiler/plan.js';
import type { Instruction, Program } from '../compiler/programs.js';
import type { ModelConfig } from '../model/config.js';
import type { ChipEndpoint } from '../transport/types.js';
import { decodeFrame, tensorView, type DecodedFrame, type Dtype, type FrameTemplate } from '../transport/frame.js';
import { RunError } from '../util/errors.js';
import { weightKey, type ChipWeights } from './chip-weights.js';
import {
  addInPlace,
  applyRope,
  argmaxRows,
  attend,
  combineArgmax,
  embedLookup,
  KvCache,
  lmHeadSlice,
  matmulXWt,
  rmsNorm,
  routeTopK,
  swigluSlice,
  type ArgmaxPartial,
} from './kernels.js';
import { usesMoe } from './reference.js';
import { DEFAULT_LOOKAHEAD_STEPS, runSteps, type Fidelity, type FrameFault, type RunSpec, type StepInstance, type StepLengths } from './run-spec.js';
import { frameTemplate, stepRecvs, TimingReceiver, type RecvSlot } from './timing-receiver.js';
import { LinkBundle, type LinkFrame } from './link-bundle.js';
import { bundleCount, bundleFrames } from '../transport/bundle.js';

/**
 * One emulated chip: its SRAM contents (weight slices, KV cache, activations) and the executor of
 * its Program. Instructions run in tick order; a receive waits (in wall time) for its frame, which
 * may have arrived early and waits in a buffer. Virtual time never depends on wall time: as on the
 * hardware, every instruction happens at the tick the Program gives it (step base + tick), and each
 * frame carries the virtual tick it arrives at. A frame that arrives after the tick its first
 * consumer needs it is a schedule violation: counted and reported with chip ids and ticks. The
 * emulator still hands the consumer the right values (it waited in wall time), so one fault shows up
 * as one violation, not as a cascade, and the timeline stays the compiler's.
 *
 * Wall-clock order (docs/runtime.md, "Lockstep execution"): in numeric fidelity a chip waits for a
 * frame when its Program receives it (values flow, so the order is causal), and for a run of
 * consecutive receives it is woken once, when all of them are in. In timing fidelity no value flows:
 * like the hardware, which fires every send at its tick without waiting for anything, a chip issues a
 * step's sends at once and checks the step's receives later, up to `lookaheadSteps` steps behind
 * (look-ahead from the known schedule). Every frame still crosses the transport and is checked
 * (tick, checksum, duplicates, missing); virtual times and counts are the same either way. Timing
 * fidelity checks a frame by comparing its bytes with the one the schedule says comes next on its link
 * (TimingReceiver), and decodes only frames that differ.
 */

export type TensorMeta = Pick<Tensor, 'name' | 'rows' | 'cols' | 'dtype' | 'bytes'>;

export interface ChipInit {
  readonly chip: number;
  readonly chipId: string;
  readonly model: ModelConfig;
  readonly fidelity: Fidelity;
  readonly context: number;
  readonly prefillChunk: number;
  readonly program: Program;
  /** Metadata of every tensor this chip's Program touches, per step kind. */
  readonly tensors: { readonly prefill: Record<number, TensorMeta>; readonly decode: Record<number, TensorMeta> };
  /** Chip index -> chip id, for every peer in the Program. */
  readonly peers: Record<number, string>;
  readonly stepLengths: StepLengths;
  /** Tick within a step at which its input token ids are ready (the sync overhead). */
  readonly startTick: number;
  /** On the sampler: ids of its `tok` and `next` tensors per step kind. */
  readonly sampler: { readonly tok: { prefill: number; decode: number }; readonly next: { prefill: number; decode: number } } | null;
  /** Wall-clock limit on waiting for one frame before it is declared missing. */
  readonly watchdogMs: number;
}

export type ViolationKind = 'late' | 'missing' | 'duplicate' | 'corrupt' | 'unexpected';

export interface Violation {
  readonly kind: ViolationKind;
  readonly step: number;
  readonly tensor: string;
  readonly src: string;
  readonly dst: string;
  /** Virtual tick the frame arrived (late), or was due (missing). */
  readonly tick: number;
  /** Virtual tick by which it was needed. */
  readonly needBy?: number;
  readonly message: string;
}

export interface ChipRunResult {
  readonly chipId: string;
  readonly violations: Violation[];
  readonly framesSent: number;
  readonly bytesSent: number;
  /** Frames whose header this chip decoded (see GenerateResult.messages.decoded). */
  readonly framesDecoded: number;
  /** Sampler only: the generated ids, and per generated token the virtual tick at which it was known. */
  readonly tokens: number[] | null;
  readonly tokenTicks: number[] | null;
}

type Value = Float32Array | Int32Array | null;

/** One frame the Program receives: where it comes from and the ticks it is checked against. */
interface Expect {
  readonly key: string;
  readonly step: number;
  /** The receiving instruction's tensor id (values map key). */
  readonly tensorId: number;
  readonly tensor: string;
  readonly src: string;
  /** Virtual tick it is due to arrive. */
  readonly tick: number;
  /** Virtual tick by which it is needed. */
  readonly needBy: number;
}

interface Waiter {
  readonly expect: Expect;
  readonly resolve: (d: DecodedFrame) => void;
  readonly since: number;
}

type SendInstruction = Extract<Instruction, { kind: 'send' }>;

/** What every frame of one send instruction shares, worked out at its first send. */
interface SendRoute {
  readonly dst: string;
  readonly meta: TensorMeta;
  /** The (src, dst) link's sequence counter, shared by every instruction that sends on it. */
  readonly link: { seq: number };
  /** Its frames' constant header, packed once (per dtype: numeric sends f32/i32, timing 'none'). */
  template: FrameTemplate | null;
}

/** Timing fidelity: a link this chip sends on, and what it carries per step. */
interface OutLink {
  readonly dst: string;
  readonly bundle: LinkBundle;
  readonly link: { seq: number };
  /** Tensor bytes (the chip's bytesSent) per step of each kind. */
  readonly tensorBytes: { readonly prefill: number; readonly decode: number };
}

/** Timing fidelity: the steps [from, to) of the run whose frames a chip waits for on the event loop. */
interface WindowWait {
  readonly from: number;
  readonly to: number;
  missing: number;
  readonly since: number;
  readonly resolve: () => void;
}

type Due = Pick<Expect, 'step' | 'tensor' | 'src' | 'tick' | 'needBy'>;

const frameKey = (step: number, tensor: string, src: string): string => `${step}|${tensor}|${src}`;

export class ChipRuntime {
  private endpoint: ChipEndpoint | null = null;
  private readonly buffered = new Map<string, DecodedFrame>();
  /** Timing fidelity: bundles that arrived before this chip's run began, in arrival order. */
  private early: { readonly bundle: Uint8Array; readonly src: string }[] = [];
  private readonly consumed = new Set<string>();
  private waiter: Waiter | null = null;
  private violations: Violation[] = [];
  private fatal: RunError | null = null;
  /** First step of the current (or last) run. */
  private firstStep = 0;
  /** The previous run failed: frames of steps before this run's are its leftovers, dropped. */
  private dropEarlier = false;
  private failRun: ((e: RunError) => void) | null = null;
  private readonly links = new Map<string, { seq: number }>();
  private readonly routes = new Map<SendInstruction, SendRoute>();
  /** Timing fidelity: the receive ledger (null in numeric fidelity). */
  private readonly timing: TimingReceiver | null;
  private window: WindowWait | null = null;
  /** Timing fidelity, per step kind: the send instructions, and the end tick of the sampler's token op (-1 elsewhere). */
  private readonly timingSteps: Record<'prefill' | 'decode', { readonly sends: readonly SendInstruction[]; readonly tokenEnd: number }> | null;
  /** Timing fidelity: per destination, its frames per step (in send order) as a window's bundle; made at the first run, not at start-up. */
  private outLinks: readonly OutLink[] | null = null;
  /** Where numeric frames are encoded before the transport copies them: one buffer per frame size. */
  private readonly frameBuffers = new Map<number, Uint8Array>();
  private readonly caches = new Map<number, KvCache>();
  private framesSent = 0;
  private bytesSent = 0;
  private framesDecoded = 0;
  /** lm_head chips: the logits slice of the most recent step (host readback for final_logits). */
  lastLogits: { start: number; logits: Float32Array } | null = null;
  private readonly moe: boolean;

  constructor(
    readonly init: ChipInit,
    private readonly weights: ChipWeights,
  ) {
    this.moe = usesMoe(init.model);
    const recvs = (kind: 'prefill' | 'decode') => stepRecvs(init.program[kind].instructions, init.tensors[kind], init.peers, init.chipId);
    this.timing = init.fidelity === 'timing' ? new TimingReceiver({ prefill: recvs('prefill'), decode: recvs('decode') }) : null;
    const timingStep = (kind: 'prefill' | 'decode') => {
      const prog = init.program[kind].instructions;
      const next = init.sampler?.next[kind];
      const token = prog.find((ins) => ins.kind === 'compute' && ins.output === next);
      return { sends: prog.filter((ins): ins is SendInstruction => ins.kind === 'send'), tokenEnd: token?.kind === 'compute' ? token.end : -1 };
    };
    this.timingSteps = init.fidelity === 'timing' ? { prefill: timingStep('prefill'), decode: timingStep('decode') } : null;
    if (init.fidelity === 'numeric') {
      const m = init.model;
      for (const ins of init.program.decode.instructions) {
        if (ins.kind === 'compute' && ins.kernel.kind === 'attention') {
          const k = ins.kernel;
          this.caches.set(k.layer, new KvCache(init.context, k.kvHeadEnd - k.kvHeadStart, m.headDim, k.kvHeadStart));
        }
      }
    }
  }

  /** The links this chip sends on, with the frames each carries per step (timing fidelity). */
  private linksOut(): OutLink[] {
    const { prefill: { sends: prefill }, decode: { sends: decode } } = this.timingSteps!;
    const me = this.init.chipId;
    const byDst = new Map<string, { frames: LinkFrame[][]; tensorBytes: { prefill: number; decode: number } }>();
    const kinds = [['prefill', prefill] as const, ['decode', decode] as const];
    kinds.forEach(([kind, sends], k) => {
      for (const ins of sends) {
        const dst = this.init.peers[ins.to];
        const m = this.init.tensors[kind][ins.tensor];
        let d = byDst.get(dst);
        if (d === undefined) byDst.set(dst, (d = { frames: [[], []], tensorBytes: { prefill: 0, decode: 0 } }));
        d.frames[k].push({ template: frameTemplate(m, me, dst, 'none'), tick: ins.arrive });
        d.tensorBytes[kind] += m.bytes;
      }
    });
    return [...byDst].map(([dst, d]) => ({ dst, bundle: new LinkBundle(d.frames[0], d.frames[1]), link: this.link(dst), tensorBytes: d.tensorBytes }));
  }

  /** The (this chip, dst) link's sequence counter, shared by every way of sending on it. */
  private link(dst: string): { seq: number } {
    let link = this.links.get(dst);
    if (link === undefined) this.links.set(dst, (link = { seq: 0 }));
    return link;
  }

  attach(endpoint: ChipEndpoint): void {
    this.endpoint = endpoint;
    endpoint.onFrame((frame, src) => this.onFrame(frame, src));
    endpoint.onBundle((bundle, src) => this.onBundle(bundle, src));
    endpoint.onError((err) => this.abort(new RunError('RACKEMU_ERR_TRANSPORT', `${this.init.chipId}: transport failed: ${err.message}`, { cause: err })));
  }

  private violation(v: Omit<Violation, 'message' | 'dst'>, message: string): Violation {
    const full: Violation = { ...v, dst: this.init.chipId, message: `${v.kind} frame: ${message}` };
    this.violations.push(full);
    return full;
  }

  private abort(e: RunError): void {
    if (this.fatal) return;
    this.fatal = e;
    this.failRun?.(e);
  }

  /** Timing fidelity: a window's bundle from `src` is taken whole if it is exactly what the schedule says (TimingReceiver.acceptBundle). */
  private onBundle(bundle: Uint8Array, src: string): boolean {
    const t = this.timing;
    if (t === null) return false;
    if (!t.active) {
      // before this chip's run began (its peers started first): kept whole until the run begins
      this.early.push({ bundle: bundle.slice(), src });
      return true;
    }
    const s = t.acceptBundle(bundle, src);
    if (s < 0) return false;
    this.arrived(s, bundleCount(bundle));
    return true;
  }

  private onFrame(frame: Uint8Array, src: string): void {
    const t = this.timing;
    if (t !== null && t.active) {
      const s = t.accept(frame, src);
      if (s >= 0) {
        this.arrived(s, 1);
        return;
      }
    }
    let decoded: DecodedFrame;
    this.framesDecoded++;
    try {
      decoded = decodeFrame(frame, { verify: this.init.fidelity === 'numeric' });
    } catch (cause) {
      const v = this.violation({ kind: 'corrupt', step: -1, tensor: '?', src, tick: -1 }, `undecodable frame from ${src} at ${this.init.chipId}`);
      this.abort(new RunError('RACKEMU_ERR_SCHEDULE_VIOLATION', v.message, { cause, details: { violation: v } }));
      return;
    }
    const h = decoded.header;
    if (this.dropEarlier && h.step < this.firstStep) return;
    if (t !== null && t.active && this.placeTiming(decoded, src)) return;
    const key = frameKey(h.step, h.tensor, src);
    if (this.buffered.has(key) || this.consumed.has(key)) {
      this.duplicate(h, src);
      return;
    }
    if (this.waiter?.expect.key === key) {
      const w = this.waiter;
      this.waiter = null;
      this.consumed.add(key);
      w.resolve(decoded);
    } else {
      this.buffered.set(key, decoded);
    }
  }

  /**
   * Timing fidelity, a decoded frame: if the run expects it, records it (a duplicate or late frame is a
   * violation) and returns true; otherwise false (the caller buffers it; unexpected at the run's end).
   */
  private placeTiming(d: DecodedFrame, src: string): boolean {
    const t = this.timing!;
    const h = d.header;
    const at = t.locate(h, src);
    if (at === null) return false;
    const due = this.due(at.step, at.slot);
    if (!t.mark(at.step, at.slot, h.seq)) {
      this.duplicate(h, src);
      return true;
    }
    try {
      this.check(due, d);
    } catch (e) {
      this.abort(e as RunError);
    }
    this.arrived(at.step, 1);
    return true;
  }

  private duplicate(h: DecodedFrame['header'], src: string): void {
    this.violation({ kind: 'duplicate', step: h.step, tensor: h.tensor, src, tick: h.tick }, `${h.tensor} from ${src} to ${this.init.chipId} (step ${h.step}, tick ${h.tick}) arrived twice; the copy is dropped`);
  }

  /** Timing fidelity: `frames` frames of run step `s` (or of its window) arrived; wakes the event-loop wait when its window is complete. */
  private arrived(s: number, frames: number): void {
    const w = this.window;
    if (w !== null && s >= w.from && s < w.to && (w.missing -= frames) === 0) {
      this.window = null;
      w.resolve();
    }
  }

  /** The absolute step and ticks of a timing receive slot in run step `s`. */
  private due(s: number, slot: RecvSlot): Due {
    const st = this.timing!.runSteps[s];
    return { step: st.index, tensor: slot.tensor, src: slot.src, tick: st.base + slot.tick, needBy: st.base + slot.needBy };
  }

  /**
   * Timing fidelity: wait (in wall time) until every frame of run steps [from, to) has arrived. On the
   * shared-memory transport the thread blocks in the transport, woken once as many frames as are missing
   * have come in; otherwise the event loop runs until the last one arrives. The watchdog reports the
   * earliest-due frame still missing.
   */
  private async waitWindow(from: number, to: number, failed: Promise<never>): Promise<void> {
    const t = this.timing!;
    if (this.endpoint!.pollSync) {
      this.pollUntil(
        () => t.missing(from, to),
        () => this.missingInWindow(from, to),
      );
      return;
    }
    const missing = t.missing(from, to);
    if (missing === 0) return;
    try {
      await Promise.race([new Promise<void>((resolve) => (this.window = { from, to, missing, since: Date.now(), resolve })), failed]);
    } finally {
      this.window = null;
    }
  }

  private missingInWindow(from: number, to: number): RunError {
    const at = this.timing!.firstMissing(from, to)!;
    return this.missing(this.due(at.step, at.slot));
  }

  /** The frame `e`, if it has arrived (it is then consumed). */
  private takeBuffered(e: Expect): DecodedFrame | undefined {
    const d = this.buffered.get(e.key);
    if (d !== undefined) {
      this.buffered.delete(e.key);
      this.consumed.add(e.key);
    }
    return d;
  }

  /**
   * The frames of `group`, in order, waiting (in wall time) until all have arrived. On the
   * shared-memory transport the thread blocks in the transport and is woken once, when as many
   * frames as are missing have come in; otherwise it awaits them one by one on the event loop.
   */
  private takeAll(group: readonly Expect[]): DecodedFrame[] | Promise<DecodedFrame[]> {
    const ep = this.endpoint!;
    if (ep.pollSync) {
      this.waitSync(group);
      return group.map((e) => this.takeBuffered(e)!);
    }
    return (async () => {
      const out: DecodedFrame[] = [];
      for (const e of group) out.push(this.takeBuffered(e) ?? (await new Promise<DecodedFrame>((resolve) => (this.waiter = { expect: e, resolve, since: Date.now() }))));
      return out;
    })();
  }

  /** Block until every frame of `group` is buffered; past the watchdog, the earliest-due one still absent is missing. */
  private waitSync(group: readonly Expect[]): void {
    this.pollUntil(
      () => {
        let n = 0;
        for (const e of group) if (!this.buffered.has(e.key)) n++;
        return n;
      },
      () => this.missing(group.filter((e) => !this.buffered.has(e.key)).reduce((a, e) => (e.tick < a.tick ? e : a))),
    );
  }

  /**
   * Poll the shared-memory transport until `missing()` frames are 0, woken once as many as are missing
   * could be in. The watchdog runs inside the loop, since timers cannot fire while the thread is
   * blocked: after watchdogMs the run ends with `overdue()`'s error.
   */
  private pollUntil(missing: () => number, overdue: () => RunError): void {
    const since = Date.now();
    const limit = this.init.watchdogMs;
    for (;;) {
      if (this.fatal) throw this.fatal;
      const n = missing();
      if (n === 0) return;
      const waited = Date.now() - since;
      if (waited >= limit) throw overdue();
      this.endpoint!.pollSync!(Math.min(250, limit - waited), n);
    }
  }

  /** Wall-clock watchdog of the async path: a receive that waits longer than watchdogMs is a missing frame. */
  private checkWatchdog(): void {
    const w = this.waiter;
    if (w && Date.now() - w.since >= this.init.watchdogMs) this.missing(w.expect);
    const win = this.window;
    if (win && Date.now() - win.since >= this.init.watchdogMs) this.missingInWindow(win.from, win.to);
  }

  /** Records a missing frame and ends the run with RACKEMU_ERR_WATCHDOG; returns the error for the sync path to throw. */
  private missing(w: Due): RunError {
    const v = this.violation(
      { kind: 'missing', step: w.step, tensor: w.tensor, src: w.src, tick: w.tick, needBy: w.needBy },
      `${w.tensor} from ${w.src} to ${this.init.chipId} (step ${w.step}) was due at tick ${w.tick} and has not arrived after ${this.init.watchdogMs} ms of wall time`,
    );
    this.abort(new RunError('RACKEMU_ERR_WATCHDOG', v.message, { details: { violation: v } }));
    return this.fatal!;
  }

  /** Checks a received frame against its Program entry: checksum (fatal) and arrival tick (a 'late' violation). */
  private check(e: Due, d: DecodedFrame): void {
    if (d.integrity === 'mismatch') {
      const v = this.violation({ kind: 'corrupt', step: e.step, tensor: e.tensor, src: e.src, tick: d.header.tick }, `${e.tensor} from ${e.src} to ${this.init.chipId} (step ${e.step}, tick ${d.header.tick}) failed its checksum`);
      throw new RunError('RACKEMU_ERR_SCHEDULE_VIOLATION', v.message, { details: { violation: v } });
    }
    if (d.header.tick > e.needBy) {
      this.violation(
        { kind: 'late', step: e.step, tensor: e.tensor, src: e.src, tick: d.header.tick, needBy: e.needBy },
        `${e.tensor} from ${e.src} to ${this.init.chipId} (step ${e.step}) arrived at tick ${d.header.tick}, needed at tick ${e.needBy} (${d.header.tick - e.needBy} ticks late)`,
      );
    }
  }

  private expectOf(ins: Extract<Instruction, { kind: 'recv' }>, step: StepInstance): Expect {
    const name = this.init.tensors[step.kind][ins.tensor].name;
    const src = this.init.peers[ins.from];
    return { key: frameKey(step.index, name, src), step: step.index, tensorId: ins.tensor, tensor: name, src, tick: step.base + ins.tick, needBy: step.base + ins.needBy };
  }

  async run(spec: RunSpec): Promise<ChipRunResult> {
    const steps = runSteps(spec, this.init.prefillChunk, this.init.stepLengths);
    this.violations = [];
    this.framesSent = 0;
    this.bytesSent = 0;
    // A run starts clean after a failed one too: that run's error went out with it, and what is left
    // of it (frames of its steps still buffered, in flight or held) is dropped when it shows up here.
    // After a run that succeeded nothing of it can be left, so such a frame stays a violation.
    this.dropEarlier = this.fatal !== null;
    this.fatal = null;
    this.waiter = null;
    this.window = null;
    this.firstStep = steps[0].index;
    // keys of earlier runs can no longer collide (step numbers only grow); forget them
    const earlier = (key: string) => Number(key.slice(0, key.indexOf('|'))) < this.firstStep;
    for (const key of this.consumed) if (earlier(key)) this.consumed.delete(key);
    if (this.dropEarlier) for (const key of this.buffered.keys()) if (earlier(key)) this.buffered.delete(key);
    const isSampler = this.init.sampler !== null;
    const tokens: number[] = [];
    const tokenTicks: number[] = [];
    const timer = setInterval(() => this.checkWatchdog(), Math.max(50, Math.min(1000, this.init.watchdogMs / 4)));
    const failed = new Promise<never>((_, reject) => {
      this.failRun = reject;
      if (this.fatal) reject(this.fatal);
    });
    failed.catch(() => undefined);
    const faults = spec.faults ?? [];
    // a prefill step's output token counts only at the end of the prompt (the first new token)
    const lastPrefill = steps.findLastIndex((st) => st.kind === 'prefill');
    const counts = (i: number) => isSampler && i >= lastPrefill;
    try {
      if (this.init.fidelity === 'timing') {
        // Look-ahead windows of lookahead + 1 steps: a chip issues a window's sends, then checks its
        // receives; it sleeps once per window, not once per step, and is woken (FRAMES/WANT) only once
        // all the frames it misses could be in. The chips thus move in epochs of windows.
        const windowSteps = Math.max(0, spec.lookaheadSteps ?? DEFAULT_LOOKAHEAD_STEPS) + 1;
        this.timing!.begin(steps, windowSteps);
        this.adoptBuffered();
        const ep = this.endpoint!;
        for (let from = 0; from < steps.length; ) {
          if (this.fatal) throw this.fatal;
          const to = Math.min(steps.length, from + windowSteps);
          // the window's frames leave together at uncork (cork), before the chip waits for its own
          ep.cork();
          this.issueWindow(steps, from, to, faults);
          ep.uncork();
          await this.waitWindow(from, to, failed);
          for (let i = from; i < to; i++) if (counts(i)) tokenTicks.push(this.tokenTick(steps[i]));
          from = to;
        }
      } else {
        let carry: { ids: Int32Array | null; tick: number } = { ids: null, tick: 0 };
        for (const [i, step] of steps.entries()) {
          carry = await Promise.race([this.runStep(step, faults, carry), failed]);
          if (counts(i)) {
            tokenTicks.push(carry.tick);
            if (carry.ids) tokens.push(carry.ids[0]);
          }
        }
      }
      // Frames nobody asked for: a sender with a wrong Program, or a misrouted frame.
      for (const key of this.buffered.keys()) {
        const [step, tensor, src] = key.split('|');
        this.violation({ kind: 'unexpected', step: Number(step), tensor, src, tick: -1 }, `${tensor} from ${src} (step ${step}) is not in ${this.init.chipId}'s Program`);
      }
      this.buffered.clear();
    } finally {
      this.timing?.end();
      this.endpoint?.uncork();
      clearInterval(timer);
      this.failRun = null;
    }
    // counted from the end of the last run: frames decoded before this run began are this run's
    const decoded = this.framesDecoded;
    this.framesDecoded = 0;
    return {
      chipId: this.init.chipId,
      violations: this.violations,
      framesSent: this.framesSent,
      bytesSent: this.bytesSent,
      framesDecoded: decoded,
      tokens: isSampler && this.init.fidelity === 'numeric' ? tokens : null,
      tokenTicks: isSampler ? tokenTicks : null,
    };
  }

  /**
   * Frames that came before this chip's timing run began (its peers started first) wait, decoded, in
   * `buffered`, and bundles whole in `early`: the run's ledger takes those it expects; the rest stay,
   * to be reported as unexpected.
   */
  private adoptBuffered(): void {
    for (const [key, d] of this.buffered) {
      if (this.placeTiming(d, key.slice(key.lastIndexOf('|') + 1))) this.buffered.delete(key);
    }
    const early = this.early;
    this.early = [];
    for (const { bundle, src } of early) {
      if (this.onBundle(bundle, src)) continue;
      // not what the run expects next from src: frame by frame, as the transport would have delivered it
      const malformed = (cause: Error) => this.abort(new RunError('RACKEMU_ERR_TRANSPORT', `${this.init.chipId}: a malformed bundle from ${src}`, { cause }));
      for (const f of bundleFrames(bundle, malformed)) this.onFrame(f, src);
    }
  }

  /**
   * Timing fidelity: the sends of run steps [from, to) go out at once (no value waits for a receive);
   * their receives are checked as they arrive and waited for later. Each link's frames of the window
   * leave as one bundle (LinkBundle), unless a fault is injected into one of this chip's frames in the
   * window: then its frames go one by one, so that the fault hits just the frame it names.
   */
  private issueWindow(steps: readonly StepInstance[], from: number, to: number, faults: readonly FrameFault[]): void {
    const me = this.init.chipId;
    const first = steps[from].index;
    const last = steps[to - 1].index;
    if (faults.some((f) => f.src === me && f.step >= first && f.step <= last)) {
      for (let i = from; i < to; i++) this.issueTiming(steps[i], faults);
      return;
    }
    const ep = this.endpoint!;
    const run = this.timing!.timeline;
    for (const o of (this.outLinks ??= this.linksOut())) {
      const bundle = o.bundle.build(run, from, to, o.link.seq);
      if (bundle === null) continue;
      const frames = bundleCount(bundle);
      o.link.seq += frames;
      this.framesSent += frames;
      for (let i = from; i < to; i++) this.bytesSent += o.tensorBytes[steps[i].kind];
      ep.sendBundle(o.dst, bundle);
    }
  }

  /** Timing fidelity: one step's sends, frame by frame. */
  private issueTiming(step: StepInstance, faults: readonly FrameFault[]): void {
    const { sends } = this.timingSteps![step.kind];
    const meta = this.init.tensors[step.kind];
    // indexed, not for-of: an iterator allocates per element in a chip's rarely optimised code
    for (let i = 0; i < sends.length; i++) this.send(sends[i], step, meta, null, faults);
  }

  /** Timing fidelity: the tick at which the sampler's token of `step` is known (the end of its `next` op; 0 on other chips). */
  private tokenTick(step: StepInstance): number {
    const { tokenEnd } = this.timingSteps![step.kind];
    return tokenEnd < 0 ? 0 : step.base + tokenEnd;
  }

  /** Numeric fidelity: the Program in order, each run of receives waited for together. */
  private async runStep(step: StepInstance, faults: readonly FrameFault[], carry: { ids: Int32Array | null; tick: number }): Promise<{ ids: Int32Array | null; tick: number }> {
    const prog = this.init.program[step.kind].instructions;
    const meta = this.init.tensors[step.kind];
    const values = new Map<number, Value>();
    const s = this.init.sampler;
    let nextTick = 0;
    if (s) values.set(s.tok[step.kind], step.inputIds ?? carry.ids);
    for (let i = 0; i < prog.length; i++) {
      const ins = prog[i];
      if (ins.kind === 'recv') {
        const group: Expect[] = [];
        for (let j = i; j < prog.length && prog[j].kind === 'recv'; j++) group.push(this.expectOf(prog[j] as Extract<Instruction, { kind: 'recv' }>, step));
        const got = this.takeAll(group);
        const frames = Array.isArray(got) ? got : await got;
        group.forEach((e, k) => {
          this.check(e, frames[k]);
          values.set(e.tensorId, tensorView(frames[k]) ?? null);
        });
        i += group.length - 1;
      } else if (ins.kind === 'compute') {
        values.set(ins.output, this.compute(ins, step, values));
        if (s && ins.output === s.next[step.kind]) nextTick = step.base + ins.end;
      } else {
        // A run of consecutive sends leaves together: one message per destination (cork).
        const ep = this.endpoint!;
        ep.cork();
        for (; i < prog.length && prog[i].kind === 'send'; i++) {
          const snd = prog[i] as Extract<Instruction, { kind: 'send' }>;
          this.send(snd, step, meta, values.get(snd.tensor) ?? null, faults);
        }
        i--;
        ep.uncork();
      }
    }
    if (!s) return { ids: null, tick: 0 };
    return { ids: values.get(s.next[step.kind]) as Int32Array | null, tick: nextTick };
  }

  private route(ins: SendInstruction, meta: Record<number, TensorMeta>): SendRoute {
    let r = this.routes.get(ins);
    if (r === undefined) {
      const dst = this.init.peers[ins.to];
      r = { dst, meta: meta[ins.tensor], link: this.link(dst), template: null };
      this.routes.set(ins, r);
    }
    return r;
  }

  private send(ins: SendInstruction, step: StepInstance, meta: Record<number, TensorMeta>, v: Value, faults: readonly FrameFault[]): void {
    const r = this.route(ins, meta);
    const { dst, meta: m } = r;
    let tick = step.base + ins.arrive;
    const fault = faults.length === 0 ? undefined : faultOn(faults, step.index, m.name, this.init.chipId, dst);
    if (fault?.kind === 'drop') return;
    if (fault?.kind === 'delay') tick += fault.ticks ?? 0;
    const seq = r.link.seq++;
    const dtype: Dtype = v === null ? 'none' : v instanceof Float32Array ? 'f32' : 'i32';
    let template = r.template;
    if (template === null || template.dtype !== dtype) r.template = template = frameTemplate(m, this.init.chipId, dst, dtype);
    // The transport copies the frame (sendCopy), so it is encoded into a buffer that is reused: a
    // timing frame into its template's (only step, tick and seq change), a numeric one into the chip's
    // buffer of that size. Sending allocates nothing.
    let frame: Uint8Array;
    if (v === null) {
      frame = template.frameFor(step.index, tick, seq);
    } else {
      const bound = template.sizeBound(step.index, tick, seq);
      let buf = this.frameBuffers.get(bound);
      if (buf === undefined) this.frameBuffers.set(bound, (buf = new Uint8Array(bound)));
      const size = template.encodeInto(buf, step.index, tick, seq, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      frame = size === bound ? buf : buf.subarray(0, size);
    }
    if (fault?.kind === 'corrupt' && frame.length > 0) {
      frame = frame.slice(); // not in the reused buffer: the next frame would inherit the damage
      frame[frame.length - 1] ^= 0xff;
    }
    this.framesSent++;
    this.bytesSent += v === null ? m.bytes : v.byteLength;
    const endpoint = this.endpoint!;
    if (fault?.kind === 'duplicate') endpoint.sendCopy(dst, frame);
    endpoint.sendCopy(dst, frame);
  }

  /** Numeric kernels; inputs are the chip's own buffers or views of received frames (never mutated). */
  private compute(ins: Extract<Instruction, { kind: 'compute' }>, step: StepInstance, values: Map<number, Value>): Float32Array | Int32Array {
    const m = this.init.model;
    const w = this.weights;
    const H = m.hidden;
    const input = (i: number) => values.get(ins.inputs[i]) as Float32Array;
    const k: Kernel = ins.kernel;
    const rows = step.positions.length;
    switch (k.kind) {
      case 'embed':
        return embedLookup(values.get(ins.inputs[0]) as Int32Array, w[weightKey.embed()], k.vocabStart, k.vocabEnd, H);
      case 'sum': {
        const out = Float32Array.from(input(0));
        for (let i = 1; i < ins.inputs.length; i++) addInPlace(out, input(i));
        return out;
      }
      case 'attention': {
        const hd = m.headDim;
        const heads = k.headEnd - k.headStart;
        const kvh = k.kvHeadEnd - k.kvHeadStart;
        const xn = rmsNorm(input(0), rows, H, w[weightKey.ln1(k.layer)], m.rmsNormEps);
        const q = matmulXWt(xn, rows, H, w[weightKey.q(k.layer)], heads * hd);
        const kk = matmulXWt(xn, rows, H, w[weightKey.k(k.layer)], kvh * hd);
        const vv = matmulXWt(xn, rows, H, w[weightKey.v(k.layer)], kvh * hd);
        applyRope(q, rows, heads, hd, step.positions, m.ropeTheta);
        applyRope(kk, rows, kvh, hd, step.positions, m.ropeTheta);
        const cache = this.caches.get(k.layer)!;
        cache.append(kk, vv, step.positions.subarray(0, step.valid));
        const a = attend(q, cache, step.positions, m.heads / m.kvHeads, m.slidingWindow, { qHeadOffset: k.headStart });
        return matmulXWt(a, rows, heads * hd, w[weightKey.o(k.layer)], H);
      }
      case 'ffn':
        return this.ffn(k, input(0), rows);
      case 'lm_head': {
        const row = step.valid - 1;
        const xn = rmsNorm(input(0).subarray(row * H, (row + 1) * H), 1, H, w[weightKey.finalNorm()], m.rmsNormEps);
        const logits = lmHeadSlice(xn, 1, H, w[weightKey.lmHead()], k.vocabStart, k.vocabEnd);
        this.lastLogits = { start: k.vocabStart, logits };
        return packArgmax(argmaxRows(logits, 1, k.vocabEnd - k.vocabStart, k.vocabStart));
      }
      case 'sample': {
        const parts = ins.inputs.map((t) => unpackArgmax(values.get(t) as Int32Array));
        return Int32Array.from(combineArgmax(...parts).indices);
      }
    }
  }

  private ffn(k: Extract<Kernel, { kind: 'ffn' }>, h: Float32Array, rows: number): Float32Array {
    const m = this.init.model;
    const w = this.weights;
    const H = m.hidden;
    const xn = rmsNorm(h, rows, H, w[weightKey.ln2(k.layer)], m.rmsNormEps);
    const out = new Float32Array(rows * H);
    if (!this.moe) {
      for (const u of k.units) {
        swigluSlice(xn, rows, H, w[weightKey.w1(k.layer, u.expert)], w[weightKey.w3(k.layer, u.expert)], w[weightKey.w2(k.layer, u.expert)], u.end - u.start, out, true);
      }
      return out;
    }
    // The router is replicated on every chip and computed over the full hidden dimension, so every
    // chip of the group makes the same (bit-identical) routing decision as the reference.
    const logits = matmulXWt(xn, rows, H, w[weightKey.router(k.layer)], m.experts);
    const route = routeTopK(logits, rows, m.experts, m.expertsPerToken);
    for (const u of k.units) {
      const picked: number[] = [];
      const gate: number[] = [];
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < m.expertsPerToken; j++) {
          if (route.experts[r * m.expertsPerToken + j] === u.expert) {
            picked.push(r);
            gate.push(route.weights[r * m.expertsPerToken + j]);
          }
        }
      }
      if (picked.length === 0) continue; // not routed here this step: the slot in the schedule stays, the work is zero
      const xs = new Float32Array(picked.length * H);
      picked.forEach((r, i) => xs.set(xn.subarray(r * H, (r + 1) * H), i * H));
      const y = swigluSlice(xs, picked.length, H, w[weightKey.w1(k.layer, u.expert)], w[weightKey.w3(k.layer, u.expert)], w[weightKey.w2(k.layer, u.expert)], u.end - u.start);
      picked.forEach((r, i) => {
        const g = gate[i];
        for (let c = 0; c < H; c++) out[r * H + c] = Math.fround(out[r * H + c] + g * y[i * H + c]);
      });
    }
    return out;
  }
}

/**
 * The fault that applies to a frame, if any. Not inline in send: a closure there would make every
 * send allocate its context, faults or not.
 */
function faultOn(faults: readonly FrameFault[], step: number, tensor: string, src: string, dst: string): FrameFault | undefined {
  return faults.find((f) => f.step === step && f.tensor === tensor && f.src === src && (f.dst === undefined || f.dst === dst));
}

/** (value, index) per row as two int32 words: the float's bits, then the index. */
function packArgmax(p: ArgmaxPartial): Int32Array {
  const out = new Int32Array(p.values.length * 2);
  const f = new Float32Array(out.buffer);
  for (let r = 0; r < p.values.length; r++) {
    f[2 * r] = p.values[r];
    out[2 * r + 1] = p.indices[r];
  }
  return out;
}

function unpackArgmax(a: Int32Array): ArgmaxPartial {
  const rows = a.length / 2;
  const f = new Float32Array(a.buffer, a.byteOffset, a.length);
  const values = new Float32Array(rows);
  const indices = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    values[r] = f[2 * r];
    indices[r] = a[2 * r + 1];
  }
  return { values, indices };
}
