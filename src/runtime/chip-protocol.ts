/**
 * Messages between a host agent and its chips' workers, and errors as they cross a thread or
 * process boundary (code, message, details survive; the class is restored on the other side).
 */
import type { TransportConfig, TransportStats } from '../transport/index.js';
import { isRackemuError } from '../util/errors.js';
import type { ChipInit, ChipRunResult, StepSamples } from './chip-types.js';
import type { ChipWeights } from './chip-weights.js';
import type { RunSpec } from './run-spec.js';

export type HostToChip =
  | { type: 'init'; init: ChipInit; weights: ChipWeights; transport: TransportConfig }
  | { type: 'run'; spec: RunSpec }
  | { type: 'readback' }
  | { type: 'close' };

export interface WireError {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export type ChipToHost =
  | { type: 'ready'; chipId: string }
  | { type: 'done'; result: ChipRunResult; transport: TransportStats }
  /** Sampler, runs with RunSpec.streamTokens: what steps sampled, as they complete (before done). */
  | { type: 'samples'; chipId: string; samples: StepSamples }
  | { type: 'failed'; chipId: string; error: WireError }
  /** The chip is alive in a run (at most every BEAT_MS): its host's hang detection. */
  | { type: 'alive' }
  | { type: 'logits'; chipId: string; start: number; logits: Float32Array | null }
  | { type: 'closed'; chipId: string };

export function toWireError(e: unknown): WireError {
  if (isRackemuError(e)) return { code: e.code, message: e.message, details: e.details };
  const err = e as Error;
  return { code: 'RACKEMU_ERR_WORKER', message: err?.stack ?? String(e), details: {} };
}
