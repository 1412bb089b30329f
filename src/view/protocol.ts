/**
 * What the rack view's server sends its page (GET /view/layout, and the events of GET /view/events).
 * Shared by the server (src/view/) and the page (src/view/page/), so it imports nothing: plain data.
 *
 * Per-chip fields of an update are strings with one character per chip, in chip order (the layout's
 * `chips`): 576 chips cost 576 bytes, and the page applies them with one pass and no parsing.
 */

/** The live state of a chip, as one character of `ViewUpdate.states`. */
export const CHIP_STATE_CODES = {
  i: 'idle',
  c: 'computing',
  s: 'sending',
  f: 'failed',
  p: 'spare',
  r: 'recovering',
} as const;
export type ChipStateCode = keyof typeof CHIP_STATE_CODES;
export type ChipViewState = (typeof CHIP_STATE_CODES)[ChipStateCode];

export interface ViewChip {
  /** `r<rack>.n<node>.c<chip>` */
  readonly id: string;
  /** What the Plan gives it: `layers`, `embed`, `lm_head` (work), `idle` (none), `spare`. */
  readonly role: 'layers' | 'embed' | 'lm_head' | 'idle' | 'spare';
  /** The weight slices it holds, as the compiler lists them (`L0-7 attention q-heads 0-1 ...`). */
  readonly holds: readonly string[];
  readonly sramUsedBytes: number;
  /** Share of a decode (prefill) step the chip computes, and the share its sends keep its links busy. */
  readonly decode: { readonly compute: number; readonly send: number };
  readonly prefill: { readonly compute: number; readonly send: number };
  /** Retired with its node by a recovery (the node's failed chip, or a healthy chip beside it). */
  readonly retired: boolean;
}

/** One kind of step as the Plan schedules it: its length, per-rack activity, and its critical path. */
export interface ViewStepProfile {
  readonly lengthTicks: number;
  /**
   * Per rack, `bins` characters '0'-'9': the share of the rack's chips with work that compute or send
   * in each stretch of the step (bin b covers ticks [b, b + 1) x lengthTicks / bins).
   */
  readonly rackActivity: readonly string[];
  readonly bins: number;
  /** The critical path: ops (on one rack) and transfers (from one rack to one rack), in time order. */
  readonly criticalPath: readonly {
    readonly kind: 'op' | 'transfer';
    readonly fromRack: number;
    readonly toRack: number;
    readonly start: number;
    readonly end: number;
    readonly label: string;
  }[];
}

export interface ViewLayout {
  /** Changes with every Plan (a re-plan sends a new layout). */
  readonly planId: number;
  readonly topology: string;
  readonly model: string;
  readonly fidelity: string;
  readonly racks: number;
  readonly nodesPerRack: number;
  readonly chipsPerNode: number;
  readonly sramCapacityBytes: number;
  readonly memoryKind: 'sram' | 'hbm';
  readonly clockMhz: number;
  readonly chips: readonly ViewChip[];
  readonly steps: { readonly prefill: ViewStepProfile; readonly decode: ViewStepProfile };
  readonly predicted: { readonly ttftMs: number; readonly tpotMs: number; readonly tokensPerSPerUser: number };
  /** The layout in the compiler's words (groups, chips per group, ...). */
  readonly why: string;
}

/** A step the deployment ran, on the serving timeline's virtual clock. */
export interface ViewStep {
  readonly step: number;
  readonly kind: 'prefill' | 'decode';
  /** Virtual tick at which it started, and its length. */
  readonly tick: number;
  readonly ticks: number;
  readonly activeRows: number;
  readonly rows: number;
}

export interface ViewFaultEvent {
  readonly what: 'injected' | 'detected' | 'recovered';
  readonly kind: string;
  readonly target: string;
  /** Virtual tick on the serving timeline, when known. */
  readonly tick: number | null;
  readonly detail: string;
  /** Wall ms since the view started. */
  readonly wallMs: number;
}

export interface ViewSummary {
  /** Mean over the last finished requests (up to SUMMARY_REQUESTS); null before the first. */
  readonly measured: {
    readonly requests: number;
    readonly ttftMs: number;
    /** Null while no finished request had more than one token. */
    readonly tpotMs: number | null;
    readonly tokensPerSPerUser: number | null;
    /** This machine's wall ms between a request's tokens. */
    readonly wallMsPerToken: number | null;
  } | null;
  readonly running: number;
  readonly waiting: number;
  readonly finished: number;
  readonly stepsRun: number;
  readonly faults: { readonly injected: number; readonly detected: number; readonly recovered: number };
}

export interface ViewUpdate {
  readonly planId: number;
  /** Wall ms since the view started. */
  readonly wallMs: number;
  /** One CHIP_STATE_CODES character per chip. */
  readonly states: string;
  /** One character '0'-'9' per chip: its busy share (compute or send) over the steps since the last update. */
  readonly busy: string;
  /** Steps run since the last update (the latest ones, when many ran). */
  readonly steps: readonly ViewStep[];
  readonly faults: readonly ViewFaultEvent[];
  readonly summary: ViewSummary;
}

/** Requests the summary's measured figures average over. */
export const SUMMARY_REQUESTS = 32;
/** Steps the timeline strip keeps; an update carries at most this many. */
export const TIMELINE_STEPS = 48;
