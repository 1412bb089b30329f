/**
 * What one run asks of the chips: a window of schedule steps, decided by the coordinator. Every chip
 * derives the same step list from the same window, so no per-step coordination is needed: a serving
 * deployment is a stream of such windows (DESIGN.md, "Steps as a stream").
 *
 * Rows and batch slots. A step of the Plan carries `batch` sequences (slots) of `tokensPerSequence`
 * rows each: a prefill step `prefillChunk` rows per slot, a decode step one. Row r belongs to slot
 * floor(r / tokensPerSequence). A slot's rows carry a chunk of one request's prompt (prefill) or one
 * new token of it (decode); unused rows pad the static schedule (their values are ignored), as on the
 * hardware, whose schedule does not change with the batch's occupancy.
 */

import { KIND } from './step-kind.js';

export type Fidelity = 'numeric' | 'timing';

/**
 * A fault applied by the sending chip to its frames (fault campaigns, src/faults/): every frame from
 * `src` (to `dst`, of `tensor`, when given) in steps [step, lastStep], or a `rate` share of them.
 */
export interface FrameFault {
  readonly kind: 'delay' | 'drop' | 'duplicate' | 'corrupt';
  /** First step index on the deployment's timeline (StepWindow.firstStep + index in the window). */
  readonly step: number;
  /** Last step it applies to (default: `step` only). */
  readonly lastStep?: number;
  /** Tensor name as in the Plan (e.g. `o.L3.r0.n0.c1`); every tensor when absent. */
  readonly tensor?: string;
  /** Sending chip id. */
  readonly src: string;
  /** Receiving chip id (all receivers of the tensor when absent). */
  readonly dst?: string;
  /** Virtual ticks added to the frame's arrival (delay). */
  readonly ticks?: number;
  /** Share of the matching frames hit, drawn per frame by a hash of (step, tensor, dst): 1 when absent. */
  readonly rate?: number;
}

/**
 * A fault of a chip itself, at the start of step `step` (fault campaigns). crash: the worker dies;
 * hang: the chip stops (its thread blocks for good and answers nothing); skew: its clock drifts `ticks`
 * off the global epoch (its frames arrive that much late, and its epoch check reports it); bitflip: bits
 * of one word of a weight slice in its SRAM flip (with ECC on, one bit is corrected and counted, two are
 * detected and halt the chip; with ECC off nothing notices).
 */
export type ChipFault =
  | { readonly kind: 'crash' | 'hang'; readonly chip: string; readonly step: number }
  | { readonly kind: 'skew'; readonly chip: string; readonly step: number; readonly ticks: number }
  | {
      readonly kind: 'bitflip';
      readonly chip: string;
      readonly step: number;
      /** Local weight name on the chip (ChipWeights key, e.g. `L3.e5.w1`); drawn by `seed` when absent. */
      readonly tensor?: string;
      readonly bits: 1 | 2;
      readonly ecc: boolean;
      readonly seed: number;
    };

/**
 * A window of consecutive schedule steps. Steps run back to back from `baseTick`.
 * `rows` (numeric fidelity; null in timing fidelity, which carries no values) holds, step after step
 * and slot after slot: for a prefill step [valid rows, first position, prefillChunk input ids], for a
 * decode step [1 if the slot runs, its position] (its input id is the slot's last sampled id, which
 * the sampler chip keeps).
 */
export interface StepWindow {
  /** Index of the window's first step on the deployment's timeline (step numbers only grow). */
  readonly firstStep: number;
  /** Virtual tick at which the first step starts. */
  readonly baseTick: number;
  /** Per step: KIND.prefill or KIND.decode. */
  readonly kinds: Uint8Array;
  readonly rows: Int32Array | null;
}

export interface RunSpec {
  readonly window: StepWindow;
  readonly faults?: readonly FrameFault[];
  readonly chipFaults?: readonly ChipFault[];
  /**
   * Timing fidelity: how many steps a chip may issue (send) ahead of the oldest step whose received
   * frames it has not yet checked. 0 checks each step's frames before the next step's sends. Larger
   * values wake chip threads less often and let the transport batch; they hold more frames in flight
   * (about 40 per chip per step on mixtral-8x7b). Default DEFAULT_LOOKAHEAD_STEPS. Numeric fidelity
   * ignores it: there every send waits for the values it carries.
   */
  readonly lookaheadSteps?: number;
  /** The sampler reports each step's sampled ids as the step completes (serving), not only at the end. */
  readonly streamTokens?: boolean;
}

/**
 * Default look-ahead of timing fidelity, in steps: windows of 256 steps. Every window costs each chip a
 * sleep, a wake-up and, per link, a bundle built and checked (and a transport message); a longer window
 * holds more frames in flight: a link's bundle of a window, two of which the embedded rings are sized
 * to hold. Measured with bundles on mixtral-8x7b/groq-576, `npm run bench` on this 2-core machine,
 * marginal wall time per token: 127 steps 1.0-1.1 ms embedded (1.4-1.5x the transport floor over three
 * benches) and 2.5-2.9 ms NATS; 255 steps 0.96 ms embedded (1.3x) and 2.0 ms NATS. The NATS run's peak
 * RSS over its long runs was 7.2 GB either way (embedded 5.6 GB). Results do not depend on it (tested).
 */
export const DEFAULT_LOOKAHEAD_STEPS = 255;

/** The Plan's step shape: slots per step and rows per slot of a prefill step. */
export interface BatchShape {
  readonly batch: number;
  readonly prefillChunk: number;
}

export interface StepLengths {
  readonly prefill: number;
  readonly decode: number;
}

export interface StepInstance {
  readonly index: number;
  readonly kind: 'prefill' | 'decode';
  /** Absolute virtual tick at which the step starts on schedule. */
  readonly base: number;
  /** Numeric fidelity: the position of each row (pad rows repeat their slot's last valid position, or 0). */
  readonly positions: Int32Array;
  /** Numeric fidelity: per slot, its rows that carry real tokens (0: the slot is idle this step). */
  readonly slotRows: Int32Array;
  /** Numeric fidelity, prefill steps: each row's input id (pads are 0); decode steps: null. */
  readonly inputIds: Int32Array | null;
}

/**
 * Micro-batch `m`'s part of a per-slot or per-row array of a step carrying `microBatches` of them:
 * micro-batch m holds the m-th of equal parts (slots [m x batch, (m + 1) x batch) and their rows).
 */
export function microBatchPart<T extends Int32Array | Float32Array>(a: T, m: number, microBatches: number): T {
  const n = a.length / microBatches;
  return a.subarray(m * n, (m + 1) * n) as T;
}

/** Int32 words a step's record takes in StepWindow.rows. */
export function rowWords(kind: number, shape: BatchShape): number {
  return kind === KIND.prefill ? shape.batch * (2 + shape.prefillChunk) : shape.batch * 2;
}

/** The steps of a window, as a chip runs them. */
export function windowSteps(window: StepWindow, shape: BatchShape, lengths: StepLengths): StepInstance[] {
  const steps: StepInstance[] = [];
  let base = window.baseTick;
  let at = 0;
  for (let i = 0; i < window.kinds.length; i++) {
    const kind = window.kinds[i];
    const index = window.firstStep + i;
    if (window.rows === null)
      steps.push(
        kind === KIND.prefill ? new TimingStep(index, 'prefill', base) : new TimingStep(index, 'decode', base),
      );
    else
      steps.push(
        kind === KIND.prefill
          ? prefillStep(index, base, window.rows, at, shape)
          : decodeStep(index, base, window.rows, at, shape),
      );
    if (window.rows !== null) at += rowWords(kind, shape);
    base += kind === KIND.prefill ? lengths.prefill : lengths.decode;
  }
  return steps;
}

function prefillStep(index: number, base: number, rows: Int32Array, at: number, shape: BatchShape): StepInstance {
  const { batch, prefillChunk: T } = shape;
  const positions = new Int32Array(batch * T);
  const inputIds = new Int32Array(batch * T);
  const slotRows = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const rec = at + b * (2 + T);
    const valid = rows[rec];
    const start = rows[rec + 1];
    slotRows[b] = valid;
    for (let r = 0; r < T; r++) {
      positions[b * T + r] = valid === 0 ? 0 : start + Math.min(r, valid - 1);
      inputIds[b * T + r] = r < valid ? rows[rec + 2 + r] : 0;
    }
  }
  return { index, kind: 'prefill', base, positions, slotRows, inputIds };
}

function decodeStep(index: number, base: number, rows: Int32Array, at: number, shape: BatchShape): StepInstance {
  const positions = new Int32Array(shape.batch);
  const slotRows = new Int32Array(shape.batch);
  for (let b = 0; b < shape.batch; b++) {
    slotRows[b] = rows[at + 2 * b];
    positions[b] = rows[at + 2 * b + 1];
  }
  return { index, kind: 'decode', base, positions, slotRows, inputIds: null };
}

const NO_ROWS = new Int32Array(0);

/**
 * A step of a timing window: it carries no values, so no rows. Each of hundreds of chips builds a
 * window's steps, one per token, and timing fidelity never reads them.
 */
class TimingStep implements StepInstance {
  readonly positions = NO_ROWS;
  readonly slotRows = NO_ROWS;
  readonly inputIds = null;

  constructor(
    readonly index: number,
    readonly kind: 'prefill' | 'decode',
    readonly base: number,
  ) {}
}

/**
 * The window of one request alone in slot 0, from step `firstStep` at tick `baseTick`: ceil(prompt /
 * chunk) prefill steps (the last one yields the first new token), then one decode step per further
 * token. `values`: with rows (numeric fidelity), else without (timing).
 */
export function soloWindow(
  request: { readonly promptIds: readonly number[]; readonly maxNewTokens: number },
  at: { readonly firstStep: number; readonly baseTick: number },
  shape: BatchShape,
  values: boolean,
): StepWindow {
  const P = request.promptIds.length;
  const T = shape.prefillChunk;
  const prefills = Math.ceil(P / T);
  const decodes = Math.max(0, request.maxNewTokens - 1);
  const kinds = new Uint8Array(prefills + decodes);
  kinds.fill(KIND.prefill, 0, prefills);
  kinds.fill(KIND.decode, prefills);
  if (!values) return { firstStep: at.firstStep, baseTick: at.baseTick, kinds, rows: null };
  const rows = new Int32Array(prefills * rowWords(KIND.prefill, shape) + decodes * rowWords(KIND.decode, shape));
  let w = 0;
  for (let start = 0; start < P; start += T) {
    const valid = Math.min(T, P - start);
    rows[w] = valid;
    rows[w + 1] = start;
    for (let r = 0; r < valid; r++) rows[w + 2 + r] = request.promptIds[start + r];
    w += rowWords(KIND.prefill, shape);
  }
  for (let i = 1; i <= decodes; i++) {
    rows[w] = 1;
    rows[w + 1] = P + i - 1;
    w += rowWords(KIND.decode, shape);
  }
  return { firstStep: at.firstStep, baseTick: at.baseTick, kinds, rows };
}
