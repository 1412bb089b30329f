import type { FaultHooks } from './engine-faults.js';
import type { HostCpuBusy } from './host-ledger.js';
import type { WindowResult } from './deployment.js';
/**
 * What the serving engine (engine.ts: continuous batching over a running Deployment) offers the HTTP
 * layer (src/serve/) and the metrics. Virtual times are the emulated hardware's (ticks of the chip
 * clock, as ms); wall times are this machine's.
 */

export type Pace = 'max' | 'realtime';

export interface CompletionRequest {
  /** Unique per request (the HTTP layer's id, e.g. `cmpl-...`), used in logs and events. */
  readonly id: string;
  readonly promptIds: readonly number[];
  /** New tokens to generate, >= 1; prompt + maxTokens must fit the Plan's context. */
  readonly maxTokens: number;
  /** Numeric fidelity: generation stops after any of these ids (the model's EOS); none by default. */
  readonly stopIds?: readonly number[];
}

/** One generated token of one request, as the sampler chip's step completes. */
export interface TokenEvent {
  readonly requestId: string;
  /** 0 for the first generated token. */
  readonly index: number;
  /** The sampled id (numeric fidelity), or FILLER_TOKEN_ID in timing fidelity, which has no values. */
  readonly tokenId: number;
  /** Virtual ms since the request arrived at the coordinator, when the sampler knew this token. */
  readonly virtualMs: number;
}

/**
 * Timing fidelity carries sizes, not values: every generated token is this id. Documented in
 * docs/serving.md; the API marks such responses `"fidelity": "timing"`.
 */
export const FILLER_TOKEN_ID = 0;

export type FinishReason = 'length' | 'stop';

export interface CompletionResult {
  readonly id: string;
  readonly tokenIds: number[];
  readonly finishReason: FinishReason;
  readonly fidelity: 'numeric' | 'timing';
  readonly promptTokens: number;
  /** Virtual (emulated hardware) timings of this request. */
  readonly virtual: {
    /** Arrival to first token, queueing included. */
    readonly ttftMs: number;
    /** Mean time per output token after the first (0 for one token). */
    readonly tpotMs: number;
    /** Arrival to last token. */
    readonly e2eMs: number;
    /** Arrival to admission into a batch slot. */
    readonly queueMs: number;
    /** The arrival on the deployment's virtual timeline (ms since its first step), to measure throughput. */
    readonly arrivalMs: number;
  };
  /** Wall-clock timings on this machine. */
  readonly wall: { readonly ttftMs: number; readonly e2eMs: number };
}

/** The engine as the HTTP layer sees it. */
export interface CompletionEngine {
  readonly modelName: string;
  readonly fidelity: 'numeric' | 'timing';
  /** Vocabulary size and context of the Plan, for request validation. */
  readonly vocab: number;
  readonly context: number;
  /** True once every chip is loaded and the engine accepts requests. */
  readonly ready: boolean;
  /** Requests in batch slots, and waiting for one. */
  readonly running: number;
  readonly waiting: number;
  /**
   * Queue a request; `onToken` sees each token as its step completes. Rejects with a UsageError
   * RACKEMU_ERR_QUEUE_FULL when the waiting queue is full, RACKEMU_ERR_REQUEST for a request the
   * Plan cannot take (ids outside the vocabulary, too long for the context), RACKEMU_ERR_DRAINING
   * once draining began.
   */
  submit(request: CompletionRequest, onToken?: (e: TokenEvent) => void): Promise<CompletionResult>;
  /**
   * The request's client went away: it stops now and its batch slot is free for the next window (rows
   * already sent to the chips run on, ignored). Its submit rejects with RACKEMU_ERR_CANCELLED.
   * Unknown or finished ids are ignored.
   */
  cancel(requestId: string): void;
  /** Stop admitting (new submits reject with RACKEMU_ERR_DRAINING); resolves when every request is done. */
  drain(): Promise<void>;
}

/** What the engine reports as it serves; every method optional. */
export interface EngineObserver {
  requestQueued?(): void;
  requestAdmitted?(queueVirtualSeconds: number): void;
  requestFinished?(result: CompletionResult): void;
  requestFailed?(): void;
  setRequests?(running: number, waiting: number): void;
  /**
   * A step ran: its kind, the batch slots that carried a request (of `rows` slots), its virtual length,
   * its index and the virtual tick it started at on the serving timeline.
   */
  stepRan?(step: {
    readonly kind: 'prefill' | 'decode';
    readonly activeRows: number;
    readonly rows: number;
    readonly virtualSeconds: number;
    readonly step?: number;
    readonly tick?: number;
  }): void;
  setKvCache?(tokensHeld: number, tokensReserved: number): void;
  setPacingLag?(seconds: number): void;
  windowRan?(result: WindowResult): void;
  /** A host agent's chips loaded their programs and weights at start-up: bytes over PCIe, in virtual seconds. */
  addHostLoad?(hostId: string, bytes: number, virtualSeconds: number): void;
  /** Busy virtual seconds of every host CPU so far, and this process's real CPU seconds beside them. */
  hostCpu?(busy: readonly HostCpuBusy[], realCpuSeconds: number): void;
}

export interface EngineOptions {
  readonly pace: Pace;
  /** Requests that may wait for a batch slot (default 4 x the batch). */
  readonly maxWaiting?: number;
  /**
   * Steps per window sent to the chips. Each window costs every chip a run's start and end, which
   * with hundreds of chip threads is tens of ms of wall time (mixtral-8x7b / groq-576, timing, this
   * machine: 8.8 ms per token with windows of 16 steps, 2.6 with 64, 1.6 with 256), while a request
   * that arrives mid-window waits for the next one. Default: 64 in timing fidelity, 8 in numeric
   * (whose steps are slower than a window's overhead). The sampler reports tokens at the end of each
   * look-ahead window (timing fidelity), so a look-ahead shorter than the window streams them sooner.
   */
  readonly windowSteps?: number;
  /** Windows in flight at once: the next is queued on the chips while one runs (default 2). */
  readonly windowsInFlight?: number;
  /** Timing fidelity: RunSpec.lookaheadSteps of every window. */
  readonly lookaheadSteps?: number;
  /** Sees what the engine does, for metrics (ServingMetrics implements it). */
  readonly observer?: EngineObserver;
  /** Fault injection and recovery (src/faults/); without it a failed window fails its requests. */
  readonly faults?: FaultHooks;
}
