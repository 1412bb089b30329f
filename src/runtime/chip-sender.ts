import type { SendInstruction } from '../compiler/plan.js';
import { type Dtype, type FrameTemplate } from '../transport/frame.js';
import { bundleCount } from '../transport/bundle.js';
import type { ChipEndpoint } from '../transport/index.js';
import type { ChipInit, PerStepKind, TensorMeta } from './chip-types.js';
import { LinkBundle, type LinkFrame, type RunTimeline } from './link-bundle.js';
import type { FrameFault, StepInstance } from './run-spec.js';
import { frameTemplate } from './timing-receiver.js';

/** Numeric values a chip holds: float32 activations, int32 ids or packed argmax partials. */
export type TensorValue = Float32Array | Int32Array | null;

/** A (this chip -> peer) link's sequence counter, shared by every way of sending on it. */
interface LinkSeq {
  seq: number;
}

/** What every frame of one send instruction shares, worked out at its first send. */
interface SendRoute {
  readonly dst: string;
  readonly meta: TensorMeta;
  readonly link: LinkSeq;
  /** Its frames' constant header, packed once (per dtype: numeric sends f32/i32, timing 'none'). */
  template: FrameTemplate | null;
}

/** Timing fidelity: a peer this chip sends to, and what the link carries per step. */
interface PeerLink {
  readonly dst: string;
  readonly bundle: LinkBundle;
  readonly link: LinkSeq;
  /** Tensor bytes (counted in bytesSent) per step of each kind. */
  readonly tensorBytes: PerStepKind<number>;
}

/**
 * The send side of one chip: frames encoded from their templates into reused buffers, per-link
 * sequence numbers, frame faults applied as the Program names them, and in timing fidelity a whole
 * look-ahead window's frames to one peer as one bundle.
 */
export class ChipSender {
  framesSent = 0;
  bytesSent = 0;
  private readonly seqs = new Map<string, LinkSeq>();
  private readonly routes = new Map<SendInstruction, SendRoute>();
  /** Where numeric frames are encoded before the transport copies them: one buffer per frame size. */
  private readonly frameBuffers = new Map<number, Uint8Array>();
  /** Per step kind, the Program's send instructions. */
  private readonly sends: PerStepKind<readonly SendInstruction[]>;
  /** Timing fidelity: made at the first window, not at start-up (hundreds of chips start at once). */
  private peerLinks: readonly PeerLink[] | null = null;

  constructor(
    private readonly init: ChipInit,
    private readonly endpoint: ChipEndpoint,
  ) {
    const sendsOf = (kind: 'prefill' | 'decode') =>
      init.program[kind].instructions.filter((ins): ins is SendInstruction => ins.kind === 'send');
    this.sends = { prefill: sendsOf('prefill'), decode: sendsOf('decode') };
  }

  /** Counters start from zero for a new run. */
  resetCounts(): void {
    this.framesSent = 0;
    this.bytesSent = 0;
  }

  /**
   * Timing fidelity: the sends of run steps [from, to) go out at once. Each link's frames of the window
   * leave as one bundle (LinkBundle), unless a fault is injected into one of this chip's frames in the
   * window: then its frames go one by one, so that the fault hits just the frame it names.
   */
  sendWindow(run: RunTimeline, from: number, to: number, faults: readonly FrameFault[]): void {
    const steps = run.steps;
    const me = this.init.chipId;
    const first = steps[from].index;
    const last = steps[to - 1].index;
    if (faults.some((f) => f.src === me && f.step <= last && (f.lastStep ?? f.step) >= first)) {
      for (let i = from; i < to; i++) this.sendTimingStep(steps[i], faults);
      return;
    }
    for (const p of (this.peerLinks ??= this.makePeerLinks())) {
      const bundle = p.bundle.build(run, from, to, p.link.seq);
      if (bundle === null) continue;
      const frames = bundleCount(bundle);
      p.link.seq += frames;
      this.framesSent += frames;
      for (let i = from; i < to; i++) this.bytesSent += p.tensorBytes[steps[i].kind];
      this.endpoint.sendBundle(p.dst, bundle);
    }
  }

  /** Timing fidelity: one step's sends, frame by frame. */
  private sendTimingStep(step: StepInstance, faults: readonly FrameFault[]): void {
    const sends = this.sends[step.kind];
    // indexed, not for-of: an iterator allocates per element in a chip's rarely optimised code
    for (let i = 0; i < sends.length; i++) this.send(sends[i], step, null, faults);
  }

  /** One frame of `ins` in `step`: `value` in numeric fidelity, null (its size only) in timing fidelity. */
  send(ins: SendInstruction, step: StepInstance, value: TensorValue, faults: readonly FrameFault[]): void {
    const r = this.route(ins, step);
    const { dst, meta } = r;
    let tick = step.base + ins.arrive;
    const fault = faults.length === 0 ? undefined : faultOn(faults, step.index, meta.name, this.init.chipId, dst);
    if (fault?.kind === 'drop') return;
    if (fault?.kind === 'delay') tick += fault.ticks ?? 0;
    const seq = r.link.seq++;
    const dtype: Dtype = value === null ? 'none' : value instanceof Float32Array ? 'f32' : 'i32';
    let template = r.template;
    if (template === null || template.dtype !== dtype)
      r.template = template = frameTemplate(meta, this.init.chipId, dst, dtype);
    // The transport copies the frame (sendCopy), so it is encoded into a buffer that is reused: a
    // timing frame into its template's (only step, tick and seq change), a numeric one into the chip's
    // buffer of that size. Sending allocates nothing.
    let frame: Uint8Array;
    if (value === null) {
      frame = template.frameFor(step.index, tick, seq);
    } else {
      const bound = template.sizeBound(step.index, tick, seq);
      let buf = this.frameBuffers.get(bound);
      if (buf === undefined) this.frameBuffers.set(bound, (buf = new Uint8Array(bound)));
      const payload = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      const size = template.encodeInto(buf, step.index, tick, seq, payload);
      frame = size === bound ? buf : buf.subarray(0, size);
    }
    if (fault?.kind === 'corrupt' && frame.length > 0) {
      frame = frame.slice(); // not in the reused buffer: the next frame would inherit the damage
      frame[frame.length - 1] ^= 0xff;
    }
    this.framesSent++;
    this.bytesSent += value === null ? meta.bytes : value.byteLength;
    if (fault?.kind === 'duplicate') this.endpoint.sendCopy(dst, frame);
    this.endpoint.sendCopy(dst, frame);
  }

  private route(ins: SendInstruction, step: StepInstance): SendRoute {
    let r = this.routes.get(ins);
    if (r === undefined) {
      const dst = this.init.peers[ins.to];
      r = { dst, meta: this.init.tensors[step.kind][ins.tensor], link: this.linkSeq(dst), template: null };
      this.routes.set(ins, r);
    }
    return r;
  }

  private linkSeq(dst: string): LinkSeq {
    let link = this.seqs.get(dst);
    if (link === undefined) this.seqs.set(dst, (link = { seq: 0 }));
    return link;
  }

  /** The peers this chip sends to, with the frames each link carries per step (timing fidelity). */
  private makePeerLinks(): PeerLink[] {
    const me = this.init.chipId;
    const byDst = new Map<
      string,
      { frames: [LinkFrame[], LinkFrame[]]; tensorBytes: { prefill: number; decode: number } }
    >();
    (['prefill', 'decode'] as const).forEach((kind, k) => {
      for (const ins of this.sends[kind]) {
        const dst = this.init.peers[ins.to];
        const meta = this.init.tensors[kind][ins.tensor];
        let d = byDst.get(dst);
        if (d === undefined) byDst.set(dst, (d = { frames: [[], []], tensorBytes: { prefill: 0, decode: 0 } }));
        d.frames[k].push({ template: frameTemplate(meta, me, dst, 'none'), tick: ins.arrive });
        d.tensorBytes[kind] += meta.bytes;
      }
    });
    return [...byDst].map(([dst, d]) => ({
      dst,
      bundle: new LinkBundle(d.frames[0], d.frames[1]),
      link: this.linkSeq(dst),
      tensorBytes: d.tensorBytes,
    }));
  }
}

/**
 * The fault that applies to a frame, if any. Not inline in send: a closure there would make every
 * send allocate its context, faults or not.
 */
function faultOn(
  faults: readonly FrameFault[],
  step: number,
  tensor: string,
  src: string,
  dst: string,
): FrameFault | undefined {
  for (const f of faults) {
    if (f.src !== src || step < f.step || step > (f.lastStep ?? f.step)) continue;
    if ((f.tensor !== undefined && f.tensor !== tensor) || (f.dst !== undefined && f.dst !== dst)) continue;
    if (f.rate !== undefined && f.rate < 1 && frameDraw(step, tensor, dst) >= f.rate) continue;
    return f;
  }
  return undefined;
}

/** A frame's draw in [0, 1) for `rate` faults: a hash of what names it, so the same frames are hit every time. */
function frameDraw(step: number, tensor: string, dst: string): number {
  let h = Math.imul(step ^ 0x9e3779b9, 0x85ebca6b);
  for (const s of [tensor, dst]) for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}
