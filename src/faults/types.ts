/**
 * Faults as users write them (experiment files, POST /admin/faults): a kind, a target named in the
 * system's own words (chip, host and link ids, `nats-<i>`), when it fires and its parameters.
 */

export const FAULT_KINDS = [
  'chip-crash',
  'chip-hang',
  'link-down',
  'link-degraded',
  'frame-corrupt',
  'frame-delay',
  'sram-bitflip',
  'host-crash',
  'nats-server-kill',
  'clock-skew',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * When a fault fires: a virtual tick of the serving timeline, after a request's token (0-based request index
 * in workload order, 0-based token index), or wall ms after the workload starts.
 */
export type FaultAt =
  { readonly tick: number } | { readonly request: number; readonly token: number } | { readonly wallMs: number };

export interface FaultParams {
  /**
   * frame-delay, clock-skew: virtual ticks added (frame-delay default 20000; clock-skew default 5000).
   * link-degraded: extra ticks per frame (default 2000).
   */
  readonly ticks?: number;
  /** link-degraded: fraction of frames lost, 0..1 (default 0.05). */
  readonly loss?: number;
  /** frame-corrupt: frames corrupted (default 1). */
  readonly count?: number;
  /**
   * sram-bitflip: weight tensor name on the chip (drawn when absent), bits flipped in one word (1 or 2,
   * default 1), ECC on (default true), seed for drawing word/bit (default 1).
   */
  readonly tensor?: string;
  readonly bits?: 1 | 2;
  readonly ecc?: boolean;
  readonly seed?: number;
}

/**
 * Values of absent params: the experiment parser fills them in and arm() falls back on them, so a fault
 * posted without them behaves the same (sram-bitflip's tensor stays absent: it is drawn).
 */
export const FAULT_DEFAULTS = {
  'chip-crash': {},
  'chip-hang': {},
  'link-down': {},
  'link-degraded': { ticks: 2000, loss: 0.05 },
  'frame-corrupt': { count: 1 },
  'frame-delay': { ticks: 20000 },
  'sram-bitflip': { bits: 1, ecc: true, seed: 1 },
  'host-crash': {},
  'nats-server-kill': {},
  'clock-skew': { ticks: 5000 },
} as const satisfies Readonly<Record<FaultKind, Readonly<FaultParams>>>;

export interface FaultSpec extends FaultParams {
  readonly kind: FaultKind;
  readonly target: string;
  readonly at: FaultAt;
}

export interface RandomFaults {
  readonly random: { readonly count: number; readonly kinds: readonly FaultKind[]; readonly seed: number };
}

/** True for a `random:` block of faults (drawn later, with the topology and Plan at hand). */
export function isRandomFaults(f: FaultSpec | RandomFaults): f is RandomFaults {
  return 'random' in f;
}

/** Kinds that break a part for good: recovery retires its node onto the rack's spare. */
export const PERSISTENT_KINDS: ReadonlySet<FaultKind> = new Set([
  'chip-crash',
  'chip-hang',
  'link-down',
  'link-degraded',
  'host-crash',
]);
