import type { Instruction, StepKind } from '../compiler/plan.js';
import { FrameTemplate, type Dtype, type FrameHeader } from '../transport/frame.js';
import type { TensorMeta } from './chip-types.js';
import { LinkBundle, RunTimeline } from './link-bundle.js';
import { KIND } from './step-kind.js';
import type { StepInstance } from './run-spec.js';

/**
 * The receive side of timing fidelity without per-frame objects. In timing fidelity every byte of every
 * frame follows from the schedule: its sender, receiver, tensor, step, tick and the per-link sequence
 * number. Frames of one link arrive in the order they were sent, so a chip knows, per peer, exactly
 * which frame comes next and can check an arriving frame by comparing its bytes with that expectation
 * (FrameTemplate.matches): no header decoding, no strings, no map keys. Which expected frames have
 * arrived is kept in typed arrays indexed by (step of the run, receive slot).
 *
 * Anything else (a late, dropped, duplicated, reordered or foreign frame, or a frame that came before the
 * chip's run began) fails the comparison and goes through the decoding path, which locates it by its
 * header, records it, and re-synchronises the peer's cursor; the fast path then resumes with the next
 * frame. Both paths record arrivals in the same arrays, so they cannot disagree about a frame.
 *
 * A peer sends its frames of a look-ahead window as one bundle (LinkBundle); acceptBundle checks the
 * whole bundle against the one the peer's cursor says comes next and records all its frames at once.
 * A bundle it declines is delivered frame by frame, into the paths above.
 */

/** One frame a chip receives in a step (one recv instruction). */
export interface RecvSlot {
  /** Position among the step's recv instructions (the Program's order). */
  readonly index: number;
  /** Position among the frames this slot's peer sends this chip in the step, in arrival order. */
  readonly peerPos: number;
  readonly src: string;
  readonly tensor: string;
  /** Virtual ticks relative to the step's base: due to arrive, and needed by. */
  readonly tick: number;
  readonly needBy: number;
  /** The frame as its sender encodes it. */
  readonly template: FrameTemplate;
}

/** A step kind's receives: in Program order, by peer, and by (peer, tensor) for the decoding path. */
export interface StepRecvs {
  readonly slots: readonly RecvSlot[];
  readonly byPeer: ReadonlyMap<string, readonly RecvSlot[]>;
  readonly byKey: ReadonlyMap<string, RecvSlot>;
}

/**
 * The template of the frames that carry tensor `m` from src to dst: the sender encodes with it and, in
 * timing fidelity (dtype 'none', the declared size only), the receiver compares with it.
 */
export function frameTemplate(m: TensorMeta, src: string, dst: string, dtype: Dtype): FrameTemplate {
  // an argmax partial travels as (value, index) pairs: two words per row
  const cols = m.dtype === 'argmax' ? 2 : m.cols;
  return new FrameTemplate({
    src,
    dst,
    tensor: m.name,
    dtype,
    shape: [m.rows, cols],
    byteLength: dtype === 'none' ? m.bytes : undefined,
  });
}

export function stepRecvs(
  instructions: readonly Instruction[],
  tensors: Record<number, TensorMeta>,
  peers: Record<number, string>,
  dst: string,
): StepRecvs {
  const slots: RecvSlot[] = [];
  const byPeer = new Map<string, RecvSlot[]>();
  const byKey = new Map<string, RecvSlot>();
  for (const ins of instructions) {
    if (ins.kind !== 'recv') continue;
    const m = tensors[ins.tensor];
    const src = peers[ins.from];
    let list = byPeer.get(src);
    if (list === undefined) byPeer.set(src, (list = []));
    // The Program lists receives by arrival tick, which on one link is the sender's order (a link
    // delivers in order); where it is not, the decoding path still places the frame.
    const slot: RecvSlot = {
      index: slots.length,
      peerPos: list.length,
      src,
      tensor: m.name,
      tick: ins.tick,
      needBy: ins.needBy,
      template: frameTemplate(m, src, dst, 'none'),
    };
    slots.push(slot);
    list.push(slot);
    byKey.set(`${src}|${m.name}`, slot);
  }
  return { slots, byPeer, byKey };
}

/** Where a peer's next frame is expected: run step and position in the peer's list for that step. */
interface PeerCursor {
  /** The peer's slots per step kind, indexed by KIND. */
  readonly lists: readonly (readonly RecvSlot[])[];
  /** The peer's frames of a look-ahead window, as the bundle it sends them in. */
  readonly bundle: LinkBundle;
  /** Next sequence number expected on the link; kept across runs, as the sender's counter is. */
  seq: number;
  step: number;
  pos: number;
}

const NONE: readonly RecvSlot[] = [];

export class TimingReceiver {
  private readonly recvs: readonly StepRecvs[];
  private readonly cursors = new Map<string, PeerCursor>();
  private lastSrc = '';
  private lastCursor: PeerCursor | undefined;
  private run = new RunTimeline([]);
  private kinds: Uint8Array = new Uint8Array(0);
  /** Run step -> index of its first slot in `arrived`. */
  private offsets = new Int32Array(1);
  private arrived = new Uint8Array(0);
  /** Run step -> frames still to arrive. */
  private remaining = new Int32Array(0);
  private windowSteps = 1;
  /** Whether a run is in progress (between begin and end). */
  active = false;

  constructor(recvs: Record<StepKind, StepRecvs>) {
    this.recvs = [recvs.prefill, recvs.decode];
    const peers = new Set([...recvs.prefill.byPeer.keys(), ...recvs.decode.byPeer.keys()]);
    for (const src of peers) {
      const lists = this.recvs.map((r) => r.byPeer.get(src) ?? NONE);
      this.cursors.set(src, {
        lists,
        bundle: new LinkBundle(lists[KIND.prefill], lists[KIND.decode]),
        seq: 0,
        step: 0,
        pos: 0,
      });
    }
  }

  /** A run of `steps` begins, whose senders send in look-ahead windows of `windowSteps` steps. */
  begin(steps: readonly StepInstance[], windowSteps: number): void {
    const n = steps.length;
    this.run = new RunTimeline(steps);
    this.windowSteps = Math.max(1, windowSteps);
    this.kinds = this.run.kinds;
    this.offsets = new Int32Array(n + 1);
    this.remaining = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      const count = this.recvs[this.kinds[s]].slots.length;
      this.offsets[s + 1] = this.offsets[s] + count;
      this.remaining[s] = count;
    }
    this.arrived = new Uint8Array(this.offsets[n]);
    for (const c of this.cursors.values()) {
      c.step = 0;
      c.pos = 0;
      this.settle(c);
    }
    this.active = true;
  }

  end(): void {
    this.active = false;
  }

  /** The run's steps (valid from begin on). */
  get runSteps(): readonly StepInstance[] {
    return this.run.steps;
  }

  /** The run's steps as link bundles read them (valid from begin on). */
  get timeline(): RunTimeline {
    return this.run;
  }

  /**
   * If `frame` is byte for byte the frame expected next from `src`, records it and returns its run
   * step; otherwise returns -1 and records nothing (the caller decodes it).
   */
  accept(frame: Uint8Array, src: string): number {
    const c = this.cursor(src);
    if (c === undefined || !this.active) return -1;
    const s = c.step;
    if (s >= this.run.steps.length) return -1;
    const slot = c.lists[this.kinds[s]][c.pos];
    const st = this.run.steps[s];
    if (!slot.template.matches(frame, st.index, st.base + slot.tick, c.seq)) return -1;
    const i = this.offsets[s] + slot.index;
    if (this.arrived[i] !== 0) return -1;
    this.arrived[i] = 1;
    this.remaining[s]--;
    c.seq++;
    c.pos++;
    this.settle(c);
    return s;
  }

  /**
   * If `bundle` is byte for byte the bundle of the frames `src` sends this chip from its cursor to the
   * end of that look-ahead window (LinkBundle), records them all and returns the run step of the first;
   * otherwise returns -1 and records nothing (the caller has its frames delivered one by one). A bundle
   * whose frames have partly arrived already is declined too: one by one, the copies are duplicates.
   */
  acceptBundle(bundle: Uint8Array, src: string): number {
    const c = this.cursor(src);
    if (c === undefined || !this.active || c.pos !== 0) return -1;
    const from = c.step;
    const n = this.run.steps.length;
    if (from >= n) return -1;
    const to = Math.min(n, (Math.floor(from / this.windowSteps) + 1) * this.windowSteps);
    const expected = c.bundle.build(this.run, from, to, c.seq);
    if (expected === null || expected.length !== bundle.length || Buffer.compare(expected, bundle) !== 0) return -1;
    for (let s = from; s < to; s++) {
      const list = c.lists[this.kinds[s]];
      for (let j = 0; j < list.length; j++) if (this.arrived[this.offsets[s] + list[j].index] !== 0) return -1;
    }
    let frames = 0;
    for (let s = from; s < to; s++) {
      const list = c.lists[this.kinds[s]];
      for (let j = 0; j < list.length; j++) this.arrived[this.offsets[s] + list[j].index] = 1;
      this.remaining[s] -= list.length;
      frames += list.length;
    }
    c.seq += frames;
    c.step = to;
    c.pos = 0;
    this.settle(c);
    return from;
  }

  /** Whether every frame `src` sends this chip in the run has arrived (what it sends now is for a later run). */
  peerDone(src: string): boolean {
    const c = this.cursor(src);
    return c !== undefined && c.step >= this.run.steps.length;
  }

  /** A decoded frame's place in this run: its run step and slot, or null if the run expects no such frame. */
  locate(h: FrameHeader, src: string): { step: number; slot: RecvSlot } | null {
    const s = h.step - (this.run.steps[0]?.index ?? 0);
    if (!this.active || s < 0 || s >= this.run.steps.length) return null;
    const slot = this.recvs[this.kinds[s]].byKey.get(`${src}|${h.tensor}`);
    return slot === undefined ? null : { step: s, slot };
  }

  /**
   * Records a located frame (decoding path) and moves the peer's cursor past it. Returns false when
   * the frame had already arrived (a duplicate).
   */
  mark(step: number, slot: RecvSlot, seq: number): boolean {
    const c = this.cursors.get(slot.src)!;
    if (seq >= c.seq) c.seq = seq + 1;
    const i = this.offsets[step] + slot.index;
    if (this.arrived[i] !== 0) return false;
    this.arrived[i] = 1;
    this.remaining[step]--;
    if (step > c.step || (step === c.step && slot.peerPos >= c.pos)) {
      c.step = step;
      c.pos = slot.peerPos + 1;
      this.settle(c);
    }
    return true;
  }

  /** Frames of run steps [from, to) still to arrive. */
  missing(from: number, to: number): number {
    let n = 0;
    for (let s = from; s < to; s++) n += this.remaining[s];
    return n;
  }

  /** The earliest-due frame of run steps [from, to) that has not arrived, or null. */
  firstMissing(from: number, to: number): { step: number; slot: RecvSlot } | null {
    let best: { step: number; slot: RecvSlot } | null = null;
    let bestTick = Infinity;
    for (let s = from; s < to; s++) {
      if (this.remaining[s] === 0) continue;
      const base = this.run.steps[s].base;
      for (const slot of this.recvs[this.kinds[s]].slots) {
        if (this.arrived[this.offsets[s] + slot.index] === 0 && base + slot.tick < bestTick) {
          bestTick = base + slot.tick;
          best = { step: s, slot };
        }
      }
    }
    return best;
  }

  /** The peer's cursor; frames come in batches from one peer, so the last one is kept at hand. */
  private cursor(src: string): PeerCursor | undefined {
    if (src !== this.lastSrc) {
      this.lastSrc = src;
      this.lastCursor = this.cursors.get(src);
    }
    return this.lastCursor;
  }

  /** Skip run steps in which the peer sends nothing more. */
  private settle(c: PeerCursor): void {
    const n = this.run.steps.length;
    while (c.step < n && c.pos >= c.lists[this.kinds[c.step]].length) {
      c.step++;
      c.pos = 0;
    }
  }
}
