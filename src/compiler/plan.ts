import type { ModelConfig, WeightDtype } from '../model/config.js';
import type { Topology } from '../topology/types.js';

/**
 * The compiler's output. Everything the control plane and the chips need, and nothing that depends
 * on the values flowing through: the same Plan serves numeric and timing fidelity, any transport and
 * any isolation mode. Chips are dense indices into the topology's fabric (Fabric.chipId gives the
 * `r<rack>.n<node>.c<chip>` id).
 */

/** A contiguous slice of one expert's intermediate dimension (a dense FFN is expert 0). */
export interface FfnUnit {
  readonly expert: number;
  readonly start: number;
  readonly end: number;
}

/** What a compute op does; the runtime's kernels implement each kind. */
export type Kernel =
  /** Embedding rows for token ids in [vocabStart, vocabEnd); other rows give zeros (partials sum to the embedding). */
  | { readonly kind: 'embed'; readonly vocabStart: number; readonly vocabEnd: number }
  /** Element-wise sum of all inputs (a residual and partials at a lead, or one node's partials on their way to it). */
  | { readonly kind: 'sum'; readonly layer: number; readonly what: 'embed' | 'attention' | 'ffn' }
  /** RMSNorm, q/k/v projections for heads [headStart, headEnd), RoPE, KV-cache append, attention, o_proj partial. */
  | {
      readonly kind: 'attention';
      readonly layer: number;
      readonly headStart: number;
      readonly headEnd: number;
      readonly kvHeadStart: number;
      readonly kvHeadEnd: number;
    }
  /** RMSNorm, router (replicated, MoE only), SwiGLU over the chip's units of the selected experts, weighted partial. */
  | { readonly kind: 'ffn'; readonly layer: number; readonly units: readonly FfnUnit[] }
  /** Final RMSNorm, logits for vocab [vocabStart, vocabEnd) of each sequence's last row, and the local argmax. */
  | { readonly kind: 'lm_head'; readonly vocabStart: number; readonly vocabEnd: number }
  /** Global argmax over the lm_head partials: the next token id of each sequence. */
  | { readonly kind: 'sample' };

export type KernelKind = Kernel['kind'];

export interface Tensor {
  readonly id: number;
  /** Stable name used in frames and traces, e.g. `x.L3`, `o.L3.c2`, `y.L3.c5`, `tok`. */
  readonly name: string;
  /** Chip that produces it (for `tok`, the sampler chip holding the step's input token ids). */
  readonly chip: number;
  /** Logical size in bytes at the plan's activation dtype. */
  readonly bytes: number;
  /** Elements: rows x columns, for numeric payloads. */
  readonly rows: number;
  readonly cols: number;
  readonly dtype: 'act' | 'i32' | 'argmax';
}

export interface Op {
  readonly id: number;
  readonly chip: number;
  readonly kernel: Kernel;
  /** The micro-batch whose rows it computes (0 with one micro-batch): slots [m x batch, (m + 1) x batch). */
  readonly microBatch: number;
  /** Tensor ids this op reads (already on the chip, produced locally or received). */
  readonly inputs: readonly number[];
  readonly output: number;
  readonly start: number;
  readonly end: number;
  /** Bytes the op streams as weights, and its flops, from the hardware model (for reports and traces). */
  readonly weightBytes: number;
  readonly flops: number;
}

export interface Transfer {
  readonly id: number;
  readonly tensor: number;
  readonly src: number;
  readonly dst: number;
  /** Directed link ids in order. */
  readonly links: readonly number[];
  readonly depart: number;
  readonly arrive: number;
  readonly bytes: number;
  /** Ticks each link is occupied (serialisation at the route's bandwidth). */
  readonly busyTicks: number;
}

export type StepKind = 'prefill' | 'decode';

/**
 * One schedule step: the fixed tick timeline that processes `tokensPerSequence` tokens of each of
 * `batch` sequences. Steps run back to back: a run is ceil(prompt / prefill chunk) prefill steps,
 * then one decode step per further token. Step k starts at the sum of the lengths of the steps before it.
 */
export interface Step {
  readonly kind: StepKind;
  readonly tokensPerSequence: number;
  /** Rows of one micro-batch: batch x tokensPerSequence. */
  readonly rows: number;
  /**
   * Micro-batches the step carries, each through every layer group in turn; micro-batch m's tensors are
   * named with a `.mb<m>` suffix from m = 1 on (`tok.mb1`, `x.L3.mb1`, `next.mb1`).
   */
  readonly microBatches: number;
  /** Ticks from step start to the next token ids being ready at the sampler chip. */
  readonly lengthTicks: number;
  readonly tensors: readonly Tensor[];
  readonly ops: readonly Op[];
  readonly transfers: readonly Transfer[];
}

/**
 * Per-chip Programs: each chip's own view of a step, the ordered, tick-stamped instruction list it
 * executes. Derived from the step's ops and transfers; ticks are relative to the step's start.
 * Order: by tick; at one tick receives come before computes, computes before sends.
 */
export type Instruction =
  /** A tensor lands from `from` at `tick`; it must be there by `needBy` (its first local use). */
  | {
      readonly kind: 'recv';
      readonly tick: number;
      readonly needBy: number;
      readonly tensor: number;
      readonly from: number;
      readonly bytes: number;
    }
  | {
      readonly kind: 'compute';
      readonly tick: number;
      readonly end: number;
      readonly op: number;
      readonly kernel: Kernel;
      /** The micro-batch whose slots it computes (Op.microBatch). */
      readonly microBatch: number;
      readonly inputs: readonly number[];
      readonly output: number;
    }
  /** The tensor leaves for `to` at `tick` and, on schedule, arrives at `arrive`. */
  | {
      readonly kind: 'send';
      readonly tick: number;
      readonly arrive: number;
      readonly tensor: number;
      readonly to: number;
      readonly bytes: number;
    };

export type RecvInstruction = Extract<Instruction, { kind: 'recv' }>;
export type ComputeInstruction = Extract<Instruction, { kind: 'compute' }>;
export type SendInstruction = Extract<Instruction, { kind: 'send' }>;

export interface ChipStepProgram {
  readonly kind: StepKind;
  readonly instructions: readonly Instruction[];
}

export interface Program {
  readonly chip: number;
  readonly prefill: ChipStepProgram;
  readonly decode: ChipStepProgram;
}

export interface ChipMemory {
  readonly weightBytes: number;
  readonly kvBytes: number;
  /** Peak live activation bytes over each step kind (from tensor lifetimes in the schedule). */
  readonly peakActivationBytes: { readonly prefill: number; readonly decode: number };
}

export interface ChipPlacement {
  readonly chip: number;
  readonly role: 'layers' | 'embed' | 'lm_head' | 'idle' | 'spare';
  /** Layers this chip holds a share of. */
  readonly layers: readonly number[];
  /** Human-readable list of the weight slices it holds. */
  readonly holds: readonly string[];
  readonly memory: ChipMemory;
}

/** How the compiler split the model; chips are listed in group order. */
export interface Layout {
  /** Chips per layer group (tensor/expert parallel width). */
  readonly chipsPerGroup: number;
  /** Consecutive layers held by each group (pipeline stage depth). */
  readonly layersPerGroup: number;
  readonly groups: readonly LayerGroup[];
  /**
   * Attention parts per group, on the group's first chips: split by KV heads when it divides the KV
   * heads, else by query-head groups (each part with its own copy of its KV head).
   */
  readonly attentionChips: number;
  /**
   * Slices each expert's intermediate dimension is cut into, on the group's last chips: all of them,
   * or the chips after the attention chips when attention has chips of its own.
   */
  readonly ffnSlices: number;
  readonly embed: readonly VocabSlice[];
  readonly lmHead: readonly VocabSlice[];
  readonly sampler: number;
  readonly why: string;
}

export interface LayerGroup {
  readonly layers: readonly number[];
  readonly chips: readonly number[];
  readonly lead: number;
}

export interface VocabSlice {
  readonly chip: number;
  readonly start: number;
  readonly end: number;
}

export interface Prediction {
  readonly ttft_ms: number;
  readonly tpot_ms: number;
  readonly tokens_per_s_per_user: number;
  readonly tokens_per_s_total: number;
  readonly prefill_step_ms: number;
  readonly prefill_steps: number;
  /** Where the decode step's critical path spends its time. */
  readonly breakdown: { readonly compute_ms: number; readonly transfer_ms: number; readonly sync_ms: number };
}

export interface LinkUtilisation {
  readonly used_links: number;
  /** Busy ticks over decode step length, for the busiest link and averaged over used links. */
  readonly max: number;
  readonly mean: number;
  readonly busiest: string;
}

export interface Plan {
  readonly topology: Topology;
  readonly model: ModelConfig;
  readonly options: ResolvedCompileOptions;
  readonly layout: Layout;
  readonly placement: readonly ChipPlacement[];
  readonly steps: { readonly prefill: Step; readonly decode: Step };
  /** Per-chip Programs (chips with work only), derived from the steps. */
  readonly programs: ReadonlyMap<number, Program>;
  readonly capacityBytes: number;
  readonly memoryKind: 'sram' | 'hbm';
  // Set by re-planning (replan.ts) so that a re-plan can be re-planned in turn; absent means none.
  /** Global node indices retired so far, in the order they were retired. */
  readonly retired?: readonly number[];
  /** The spare node standing in for each retired node whose work it took over. */
  readonly substitutions?: readonly Substitution[];
  /** Chip pairs whose links have failed so far. */
  readonly failedLinks?: readonly (readonly [number, number])[];
}

/** Global node indices (Fabric.globalNodeOf). */
export interface Substitution {
  readonly retired: number;
  readonly spare: number;
}

/** Batch slots a step of the Plan carries: batch sequences in each of its micro-batches. */
export function planSlots(o: Pick<ResolvedCompileOptions, 'batch' | 'microBatches'>): number {
  return o.batch * o.microBatches;
}

export interface ResolvedCompileOptions {
  readonly dtype: WeightDtype;
  readonly batch: number;
  readonly context: number;
  readonly promptTokens: number;
  readonly prefillChunk: number;
  /** Micro-batches a step pipelines through the layer groups (1: the whole batch goes through at once). */
  readonly microBatches: number;
  /** Which group shapes the compiler searches (see LayoutSearch). */
  readonly layoutSearch: LayoutSearch;
}

/**
 * `full` (default): attention split by KV heads or by query-head groups, on chips of its own or on
 * FFN chips, with a shortlist timed by its exact decode schedule (docs/compiler.md, "Partition").
 * `classic`: only attention split by KV heads on chips that also hold FFN slices, ranked by the
 * estimate (the layouts of earlier versions, which spread toy models widely); falls back to `full`
 * when no classic split fits.
 */
export type LayoutSearch = 'classic' | 'full';
export const LAYOUT_SEARCHES: readonly LayoutSearch[] = ['classic', 'full'];
