import type { Program, Tensor } from '../compiler/plan.js';
import type { ModelConfig } from '../model/config.js';
import type { Fidelity, StepLengths } from './run-spec.js';

/** What a chip knows of a tensor its Program touches. */
export type TensorMeta = Pick<Tensor, 'name' | 'rows' | 'cols' | 'dtype' | 'bytes'>;

/** Per step kind: one value for prefill steps, one for decode steps. */
export interface PerStepKind<T> {
  readonly prefill: T;
  readonly decode: T;
}

/** Everything the control plane loads into one chip besides its weights. */
export interface ChipInit {
  readonly chip: number;
  readonly chipId: string;
  readonly model: ModelConfig;
  readonly fidelity: Fidelity;
  readonly context: number;
  /** Batch slots of every step (sequences a step carries, over all its micro-batches). */
  readonly batch: number;
  /** Micro-batches a step carries: micro-batch m holds slots [m x batch / microBatches, (m + 1) x ...). */
  readonly microBatches: number;
  /** Rows per slot of a prefill step. */
  readonly prefillChunk: number;
  readonly program: Program;
  /** Metadata of every tensor this chip's Program touches, per step kind. */
  readonly tensors: PerStepKind<Record<number, TensorMeta>>;
  /** Chip index -> chip id, for every peer in the Program. */
  readonly peers: Record<number, string>;
  readonly stepLengths: StepLengths;
  /** Tick within a step at which its input token ids are ready (the sync overhead). */
  readonly startTick: number;
  /** On the sampler: ids of its `tok` and `next` tensors per step kind, one of each per micro-batch. */
  readonly sampler: {
    readonly tok: PerStepKind<readonly number[]>;
    readonly next: PerStepKind<readonly number[]>;
  } | null;
  /** Wall-clock limit on waiting for one frame before it is declared missing. */
  readonly watchdogMs: number;
}

export type ViolationKind = 'late' | 'missing' | 'duplicate' | 'corrupt' | 'unexpected' | 'skew';

/** A bit flip in a chip's SRAM as its ECC saw it (corrected: single bit with ECC on). */
export interface EccEvent {
  readonly chip: string;
  readonly step: number;
  readonly tick: number;
  /** Local weight name on the chip. */
  readonly tensor: string;
  readonly word: number;
  readonly bits: readonly number[];
  readonly ecc: boolean;
  readonly corrected: boolean;
}

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

/** A frame a chip's Program receives: which one, when it is due and when it is needed (absolute ticks). */
export interface DueFrame {
  readonly step: number;
  readonly tensor: string;
  readonly src: string;
  /** Virtual tick it is due to arrive. */
  readonly tick: number;
  /** Virtual tick by which it is needed. */
  readonly needBy: number;
}

export interface ChipRunResult {
  readonly chipId: string;
  readonly violations: Violation[];
  readonly framesSent: number;
  readonly bytesSent: number;
  /** Frames whose header this chip decoded (see GenerateResult.messages.decoded). */
  readonly framesDecoded: number;
  /** Sampler only: what each step of the window sampled. */
  readonly samples: StepSamples | null;
  /** Bit flips this run injected into the chip's SRAM (fault campaigns). */
  readonly ecc: readonly EccEvent[];
}

/**
 * The sampler's output of steps of a window: per step, the virtual tick at which its sampled ids were
 * known, and (numeric fidelity) one id per batch slot, step after step. Which of them are a request's
 * tokens is the coordinator's to say (it knows which slot held what).
 */
export interface StepSamples {
  /** Timeline index of the first step reported. */
  readonly firstStep: number;
  readonly ticks: number[];
  /** steps x batch ids; null in timing fidelity. */
  readonly ids: Int32Array | null;
}
