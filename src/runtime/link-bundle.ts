import { bundleHeadBytes, bundleRecordBytes, writeBundleHead } from '../transport/bundle.js';
import { intSize, writeInt, type FrameTemplate } from '../transport/frame.js';
import type { StepInstance } from './run-spec.js';
import { KIND } from './step-kind.js';

/**
 * One link's frames of a look-ahead window as one bundle (timing fidelity). Every byte of a timing
 * frame follows from the schedule, so the frames a link (src -> dst) carries in run steps [from, to)
 * are known to both ends: the sender builds them and sends them in one transport message
 * (ChipEndpoint.sendBundle), and the receiver builds the same bundle and compares the one that arrives
 * with it, byte for byte, in one native comparison (TimingReceiver.acceptBundle). Per frame that costs
 * rewriting three integers in a kept image, on each side, instead of a transport message, a handler
 * call and a header check.
 *
 * The images of the last few window shapes are kept (a shape: as many prefill and decode steps, so the
 * same templates in the same order, and integers of the same msgpack widths). A window of a kept
 * shape is the same bytes but for step, tick and seq, which are rewritten in place; any other window
 * is laid out afresh. A run has a few shapes (its first window holds the prefill, its last may be
 * short, and a run of the same length repeats them), so a long decode lays out only when an integer
 * crosses a width.
 */

/** Window shapes kept per link (a run's first, middle and last windows, and one more). */
const KEPT_SHAPES = 4;

/**
 * A run's steps as link bundles read them, made once per run (TimingReceiver.begin): per step its kind
 * (0 prefill, 1 decode) and its base tick split at 2^16. Ticks pass 2^31 within a run, and in a chip's
 * mostly unoptimised code every sum beyond that allocates a heap number: with the halves, writing a
 * frame's tick takes only small-integer arithmetic.
 */
export class RunTimeline {
  readonly kinds: Uint8Array;
  readonly baseHigh: Float64Array;
  readonly baseLow: Int32Array;

  constructor(readonly steps: readonly StepInstance[]) {
    const n = steps.length;
    this.kinds = new Uint8Array(n);
    this.baseHigh = new Float64Array(n);
    this.baseLow = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      const base = steps[s].base;
      this.kinds[s] = KIND[steps[s].kind];
      this.baseHigh[s] = Math.floor(base / 0x10000);
      this.baseLow[s] = base % 0x10000;
    }
  }
}

/** A frame the link carries in every step of a kind: its template, and its arrival tick after the step's base. */
export interface LinkFrame {
  readonly template: FrameTemplate;
  readonly tick: number;
}

/** A window's bundle, and where its frames' integers sit. */
interface Image {
  readonly bytes: Uint8Array;
  /** Its shape: the window's prefill and decode steps (a run's prefill steps lead it). */
  readonly prefillSteps: number;
  readonly decodeSteps: number;
  /** Per frame: where its step, tick and seq begin (their type byte) in `bytes`, and their msgpack widths. */
  readonly at: Int32Array;
  readonly widths: Uint8Array;
  /** The one width of all its steps, of all its ticks and of all its seqs; 0 where they vary (then each is checked). */
  readonly stepWidth: number;
  readonly tickWidth: number;
  readonly seqWidth: number;
}

export class LinkBundle {
  /** The link's frames per step, in send order: [prefill, decode]. */
  private readonly lists: readonly (readonly LinkFrame[])[];
  /** Their arrival ticks after the step's base, [prefill, decode], and the least and largest of all. */
  private readonly ticks: readonly Float64Array[];
  private readonly minTick: number;
  private readonly maxTick: number;
  /** Images of recent window shapes, most recently used first. */
  private readonly images: Image[] = [];

  constructor(prefill: readonly LinkFrame[], decode: readonly LinkFrame[]) {
    this.lists = [prefill, decode];
    this.ticks = this.lists.map((l) => Float64Array.from(l, (f) => f.tick));
    const all = [...prefill, ...decode].map((f) => f.tick);
    this.minTick = Math.min(...all);
    this.maxTick = Math.max(...all);
  }

  /** The link's frames in one step of this kind. */
  private perStep(kind: StepInstance['kind']): readonly LinkFrame[] {
    return this.lists[KIND[kind]];
  }

  /**
   * The bundle of the link's frames in run steps [from, to), the first with sequence number `seq`, or
   * null when the link carries none then. The bytes are this object's and valid until its next build.
   * Throws RACKEMU_ERR_FRAME (from the templates) for an integer a frame cannot carry.
   */
  build(run: RunTimeline, from: number, to: number, seq: number): Uint8Array | null {
    const { steps, kinds } = run;
    // prefill steps lead a run: count them from the window's ends, scanning only a window that has both
    let prefill = 0;
    if (kinds[from] === 0) {
      prefill = to - from;
      if (kinds[to - 1] !== 0) for (prefill = 0; kinds[from + prefill] === 0; prefill++);
    }
    const decode = to - from - prefill;
    const n = prefill * this.lists[0].length + decode * this.lists[1].length;
    if (n === 0) return null;
    const images = this.images;
    for (let k = 0; k < images.length; k++) {
      const img = images[k];
      if (img.prefillSteps !== prefill || img.decodeSteps !== decode || !this.rewrite(img, run, from, to, seq, n))
        continue;
      if (k > 0) {
        images.splice(k, 1);
        images.unshift(img);
      }
      return img.bytes;
    }
    const img = this.layOut(steps, from, to, seq, n, prefill, decode);
    images.unshift(img);
    if (images.length > KEPT_SHAPES) images.pop();
    return img.bytes;
  }

  /**
   * Rewrite step, tick and seq of every frame of an image of the window's shape; false (image
   * part-written) when an integer's width differs. Every integer of the window has its image's one
   * width when both ends of its range do (intSize is monotonic): then no width is checked per frame
   * (every window of a long decode but the first), and the usual widths are written inline, since this
   * runs per frame on both ends of every link, mostly in unoptimised code, where a call costs more
   * than the writes.
   */
  private rewrite(img: Image, run: RunTimeline, from: number, to: number, seq: number, n: number): boolean {
    const { bytes: b, at, widths: w, stepWidth: ws, tickWidth: wt, seqWidth: wq } = img;
    const { steps, kinds, baseHigh, baseLow } = run;
    const uniform =
      ws !== 0 &&
      wt !== 0 &&
      wq !== 0 &&
      intSize(steps[from].index) === ws &&
      intSize(steps[to - 1].index) === ws &&
      intSize(steps[from].base + this.minTick) === wt &&
      intSize(steps[to - 1].base + this.maxTick) === wt &&
      intSize(seq) === wq &&
      intSize(seq + n - 1) === wq;
    let k = 0;
    let q = seq;
    for (let s = from; s < to; s++) {
      const ticks = this.ticks[kinds[s]];
      const index = steps[s].index;
      const high = baseHigh[s];
      const low = baseLow[s];
      for (let j = 0; j < ticks.length; j++, k += 3, q++) {
        if (!uniform) {
          if (
            !put(b, at[k], index, w[k]) ||
            !put(b, at[k + 1], steps[s].base + ticks[j], w[k + 1]) ||
            !put(b, at[k + 2], q, w[k + 2])
          )
            return false;
          continue;
        }
        let p = at[k];
        if (ws === 3) {
          b[p + 1] = index >>> 8;
          b[p + 2] = index & 0xff;
        } else writeUint(b, p, index, ws);
        p = at[k + 1];
        // the tick in 16-bit halves: (high + carry) * 2^16 + low16
        const u = low + ticks[j];
        const th = high + (u >>> 16);
        const tl = u & 0xffff;
        if (wt === 5) {
          b[p + 1] = th >>> 8;
          b[p + 2] = th & 0xff;
          b[p + 3] = tl >>> 8;
          b[p + 4] = tl & 0xff;
        } else writeUint(b, p, th * 0x10000 + tl, wt);
        p = at[k + 2];
        if (wq === 3) {
          b[p + 1] = q >>> 8;
          b[p + 2] = q & 0xff;
        } else writeUint(b, p, q, wq);
      }
    }
    return true;
  }

  private layOut(
    steps: readonly StepInstance[],
    from: number,
    to: number,
    seq: number,
    n: number,
    prefillSteps: number,
    decodeSteps: number,
  ): Image {
    const lengths = new Int32Array(n);
    let size = bundleHeadBytes(n);
    let i = 0;
    for (let s = from; s < to; s++) {
      const st = steps[s];
      for (const f of this.perStep(st.kind)) {
        lengths[i] = f.template.sizeBound(st.index, st.base + f.tick, seq + i);
        size += bundleRecordBytes(lengths[i++]);
      }
    }
    const bytes = new Uint8Array(size); // zeroed: the padding
    const at = new Int32Array(3 * n);
    const widths = new Uint8Array(3 * n);
    writeBundleHead(bytes, lengths, n);
    let off = bundleHeadBytes(n);
    i = 0;
    for (let s = from; s < to; s++) {
      const st = steps[s];
      for (const f of this.perStep(st.kind)) {
        const tick = st.base + f.tick;
        bytes.set(f.template.frameFor(st.index, tick, seq + i), off);
        const o = f.template.fieldOffsets(st.index, tick);
        at[3 * i] = off + o.step;
        at[3 * i + 1] = off + o.tick;
        at[3 * i + 2] = off + o.seq;
        widths[3 * i] = intSize(st.index);
        widths[3 * i + 1] = intSize(tick);
        widths[3 * i + 2] = intSize(seq + i);
        off += bundleRecordBytes(lengths[i++]);
      }
    }
    const uniform = (field: number): number => {
      for (let f = field + 3; f < widths.length; f += 3) if (widths[f] !== widths[field]) return 0;
      return widths[field];
    };
    return {
      bytes,
      prefillSteps,
      decodeSteps,
      at,
      widths,
      stepWidth: uniform(0),
      tickWidth: uniform(1),
      seqWidth: uniform(2),
    };
  }
}

/** Write the non-negative integer n at `at` if its msgpack width is `width`; false otherwise. */
function put(b: Uint8Array, at: number, n: number, width: number): boolean {
  if (intSize(n) !== width) return false;
  writeUint(b, at, n, width);
  return true;
}

/** Write the non-negative integer n, of msgpack width `width`, at `at` (its type byte is already there). */
function writeUint(b: Uint8Array, at: number, n: number, width: number): void {
  if (width === 1) b[at] = n;
  else if (width === 2) b[at + 1] = n;
  else if (width === 3) {
    b[at + 1] = n >>> 8;
    b[at + 2] = n & 0xff;
  } else if (width === 5) {
    b[at + 1] = n >>> 24;
    b[at + 2] = (n >>> 16) & 0xff;
    b[at + 3] = (n >>> 8) & 0xff;
    b[at + 4] = n & 0xff;
  } else writeInt(b, at, n);
}
