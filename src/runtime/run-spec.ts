/**
 * What one run asks of the chips, and the sequence of schedule steps it expands to. Every chip
 * derives the same step list from the same RunSpec, so no per-step coordination is needed.
 */

export type Fidelity = 'numeric' | 'timing';

/** A fault applied by the sending chip to one frame (tests and, later, fault campaigns). */
export interface FrameFault {
  readonly kind: 'delay' | 'drop' | 'duplicate' | 'corrupt';
  /** Step index on the deployment's timeline (RunSpec.stepOffset + index in the run). */
  readonly step: number;
  /** Tensor name as in the Plan (e.g. `o.L3.r0.n0.c1`). */
  readonly tensor: string;
  /** Sending chip id. */
  readonly src: string;
  /** Receiving chip id (all receivers of the tensor when absent). */
  readonly dst?: string;
  /** Virtual ticks added to the frame's arrival (delay). */
  readonly ticks?: number;
}

export interface RunSpec {
  /**
   * Index of this run's first step on the deployment's timeline of steps (runs on one deployment
   * continue its step numbering, so frames of consecutive runs never share a key). Default 0.
   */
  readonly stepOffset?: number;
  /** Prompt token ids (numeric); in timing fidelity only their count matters. */
  readonly promptIds: readonly number[];
  readonly maxNewTokens: number;
  readonly faults?: readonly FrameFault[];
  /**
   * Timing fidelity: how many steps a chip may issue (send) ahead of the oldest step whose received
   * frames it has not yet checked. 0 checks each step's frames before the next step's sends. Larger
   * values wake chip threads less often and let the transport batch; they hold more frames in flight
   * (about 40 per chip per step on mixtral-8x7b). Default DEFAULT_LOOKAHEAD_STEPS. Numeric fidelity
   * ignores it: there every send waits for the values it carries.
   */
  readonly lookaheadSteps?: number;
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

export interface StepInstance {
  readonly index: number;
  readonly kind: 'prefill' | 'decode';
  /** Absolute virtual tick at which the step starts on schedule. */
  readonly base: number;
  /** Position of each row (pad rows repeat the last valid position). */
  readonly positions: Int32Array;
  /** Rows that carry real tokens; the rest pad a partial prefill chunk. */
  readonly valid: number;
  /** Token ids of a prefill step's rows (pads are 0); decode steps take the previous step's output. */
  readonly inputIds: Int32Array | null;
}

export interface StepLengths {
  readonly prefill: number;
  readonly decode: number;
}

/**
 * ceil(prompt / chunk) prefill steps (the last one yields the first new token), then one decode step
 * per further token, back to back on the global tick timeline.
 */
export function runSteps(spec: RunSpec, prefillChunk: number, lengths: StepLengths): StepInstance[] {
  const P = spec.promptIds.length;
  const first = spec.stepOffset ?? 0;
  const steps: StepInstance[] = [];
  let base = 0;
  for (let start = 0; start < P; start += prefillChunk) {
    const valid = Math.min(prefillChunk, P - start);
    const positions = new Int32Array(prefillChunk);
    const inputIds = new Int32Array(prefillChunk);
    for (let r = 0; r < prefillChunk; r++) {
      positions[r] = start + Math.min(r, valid - 1);
      inputIds[r] = r < valid ? spec.promptIds[start + r] : 0;
    }
    steps.push({ index: first + steps.length, kind: 'prefill', base, positions, valid, inputIds });
    base += lengths.prefill;
  }
  for (let i = 1; i < spec.maxNewTokens; i++) {
    steps.push(new DecodeStep(first + steps.length, base, P + i - 1));
    base += lengths.decode;
  }
  return steps;
}

/**
 * A decode step. Its one position is made into an array only when asked for (numeric fidelity):
 * each of hundreds of chips builds a run's steps, one per token, and timing fidelity never reads them.
 */
class DecodeStep implements StepInstance {
  readonly kind = 'decode' as const;
  readonly valid = 1;
  readonly inputIds = null;
  private rows: Int32Array | null = null;

  constructor(
    readonly index: number,
    readonly base: number,
    private readonly position: number,
  ) {}

  get positions(): Int32Array {
    return (this.rows ??= Int32Array.of(this.position));
  }
}
