import type { Plan } from '../compiler/plan.js';
import type { ChipFault, FrameFault } from '../runtime/index.js';
import type { RunError } from '../util/errors.js';
import type { Deployment, WindowResult } from './deployment.js';

/**
 * How the serving engine meets faults: what to inject into a window before it runs, whether a window
 * that completed needs recovery (it reported schedule violations), and the recovery itself, which
 * gives the deployment to go on with (the same one after a resync, a re-planned one after a failure).
 * The engine pauses admission while recovering and replays every request in flight from its prompt
 * and the tokens it has so far; the faults room (src/faults/) decides the rest.
 */

/** A window about to run, as fault triggers see it. */
export interface WindowView {
  readonly firstStep: number;
  /** Virtual start tick of each step of the window. */
  readonly starts: readonly number[];
  /** Per step: the tokens it yields, by request id and the token's index in its request's output. */
  readonly outputs: readonly (readonly { readonly requestId: string; readonly index: number }[])[];
}

export interface ArmedFaults {
  readonly frameFaults: readonly FrameFault[];
  readonly chipFaults: readonly ChipFault[];
  /** Called once the window has been sent to the chips (faults outside them: a host or server killed). */
  readonly onStart?: () => void;
}

/** What went wrong with a window: the run's error, or a completed run's result that needs recovery. */
export interface WindowFailure {
  readonly error: RunError | null;
  readonly result: WindowResult | null;
  readonly firstStep: number;
  readonly baseTick: number;
  readonly steps: number;
  /** performance.now() when the engine learned of it. */
  readonly wallMs: number;
}

export interface Recovered {
  readonly deployment: Deployment;
  readonly plan: Plan;
  /** Virtual ticks the system was paused (detection to resume), added to the serving timeline. */
  readonly pauseTicks: number;
}

export interface FaultHooks {
  arm?(window: WindowView): ArmedFaults | null;
  needsRecovery?(result: WindowResult): boolean;
  /** A window failed: called at once, before the windows still in flight settle and recover() is called. */
  failed?(failure: WindowFailure): void;
  /** Throws (a coded error) when the system cannot recover: the requests in flight then fail closed. */
  recover(failure: WindowFailure, frontierTick: number): Promise<Recovered>;
  /** Requests in flight were replayed after a recovery: how many, and the tokens they already had. */
  replayed?(requests: number, tokens: number): void;
}
