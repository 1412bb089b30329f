/**
 * The runtime room's public surface, for the control plane: what a chip is loaded with, what it
 * reports, the messages between a host agent and its chip workers, and what one run asks. The chip
 * itself (chip.ts and the files it is made of) runs inside the chip worker (chip-worker.ts, bundled).
 */
export type {
  ChipInit,
  ChipRunResult,
  DueFrame,
  EccEvent,
  PerStepKind,
  StepSamples,
  TensorMeta,
  Violation,
  ViolationKind,
} from './chip-types.js';
export { chipWeights, type ChipWeights } from './chip-weights.js';
export { toWireError, type ChipToHost, type HostToChip, type WireError } from './chip-protocol.js';
export {
  DEFAULT_LOOKAHEAD_STEPS,
  rowWords,
  soloWindow,
  type BatchShape,
  type Fidelity,
  type FrameFault,
  type ChipFault,
  type RunSpec,
  type StepLengths,
  type StepWindow,
} from './run-spec.js';
export { KIND } from './step-kind.js';
export { CRASH_EXIT_CODE } from './chip-faults.js';
export { frameTemplate } from './timing-receiver.js';
