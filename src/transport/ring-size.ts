/**
 * How large each embedded ring is (embedded.ts): the size a caller gives, or one the transport works
 * out from the traffic the schedule puts on the pair, which the caller describes in plain terms (the
 * frames it sends per step, how far ahead a sender may run) while the byte layout stays in here.
 */

import { bundleHeadBytes, bundleRecordBytes } from './bundle.js';
import { configError } from './errors.js';

/** Data bytes of a ring when the caller gives neither a size nor the traffic. */
export const DEFAULT_RING_BYTES = 256 * 1024;

/**
 * The smallest ring the transport sizes from traffic, and the ring of a pair that has none (the
 * direction nothing is sent in): room for a few frames of the timing fidelity's ~60 bytes and more.
 */
export const MIN_RING_BYTES = 16 * 1024;

/** A ring's data area is a power of two in this range; a caller's ringBytes is rounded up into it. */
const CAPACITY_FLOOR = 1 << 10;
const CAPACITY_CEILING = 1 << 30;

/** Frames a ring holds for a pair whose frames travel one by one. */
const FRAMES_IN_FLIGHT = 4;

/** Look-ahead windows a ring holds for a pair whose frames travel as a bundle per window. */
const WINDOWS_IN_FLIGHT = 2;

/** What the ring stores before each record (a frame or a bundle): its int32 length. */
const RECORD_LENGTH_BYTES = 4;

/** What the schedule sends on one directed pair in one step (EmbeddedFabricOptions.traffic). */
export interface PairTraffic {
  readonly src: string;
  readonly dst: string;
  /** Each frame sent from src to dst in one step: the most bytes it can take encoded. */
  readonly frameBytes: readonly number[];
  /**
   * Steps a sender may run ahead of its receiver (timing fidelity's look-ahead): it then sends each
   * window of lookahead + 1 steps' frames to dst as one bundle. Absent: frames travel one by one,
   * each once its values are ready (numeric fidelity).
   */
  readonly lookahead?: number;
}

/**
 * The data bytes a pair's traffic asks for, before MIN_RING_BYTES and rounding.
 * One by one: room for four of the largest frame, so a sender is rarely held up by a receiver that is
 * still computing. Look-ahead: a sender may be a window ahead of its receiver, so the ring holds two
 * windows' frames, counted as one bundle: each frame's bytes in the bundle and its length word in the
 * bundle's head, plus the head's marker and count and the record's length word in the ring. A longer
 * look-ahead than this still works (a bundle larger than the ring streams through it), but then sender
 * and receiver take turns.
 */
export function trafficBytes(t: PairTraffic): number {
  for (const b of t.frameBytes) {
    if (!Number.isSafeInteger(b) || b <= 0) {
      const message = `embedded traffic ${t.src} -> ${t.dst}: frame sizes must be positive integers, got ${b}`;
      throw configError(message, { src: t.src, dst: t.dst, got: b });
    }
  }
  if (t.lookahead === undefined) {
    let largest = 0;
    for (const b of t.frameBytes) largest = Math.max(largest, b);
    return FRAMES_IN_FLIGHT * largest;
  }
  if (!Number.isSafeInteger(t.lookahead) || t.lookahead < 0) {
    const message = `embedded traffic ${t.src} -> ${t.dst}: lookahead must be an integer >= 0, got ${t.lookahead}`;
    throw configError(message, { src: t.src, dst: t.dst, got: t.lookahead });
  }
  let perStep = 0;
  for (const b of t.frameBytes) perStep += bundleRecordBytes(b) + 4; // + its length word in the bundle's head
  return WINDOWS_IN_FLIGHT * (t.lookahead + 1) * perStep + bundleHeadBytes(0) + RECORD_LENGTH_BYTES;
}

/** The capacity of a ring asked to hold `bytes`: the next power of two within the ring's range. */
export function ringCapacity(bytes: number, src: string, dst: string): number {
  if (!Number.isFinite(bytes) || bytes <= 0) {
    const message = `embedded ring size for ${src} -> ${dst} must be a positive number of bytes, got ${bytes}`;
    throw configError(message, { src, dst, got: bytes });
  }
  let cap = CAPACITY_FLOOR;
  while (cap < bytes && cap < CAPACITY_CEILING) cap *= 2;
  return cap;
}

/** Ring sizes as createEmbeddedFabric's options give them: a caller's size, or the traffic's. */
export interface RingSizeOptions {
  /**
   * Data bytes of each directed ring (rounded up to a power of two, within [1 KiB, 1 GiB]); a number
   * for all rings or a function of the pair. Default DEFAULT_RING_BYTES (256 KiB). Frames larger than
   * a ring still pass (streamed), but then sender and receiver take turns.
   */
  readonly ringBytes?: number | ((src: string, dst: string) => number);
  /**
   * Instead of ringBytes: what the schedule sends on each directed pair per step (entries of one pair
   * may repeat, e.g. one per kind of step), from which the transport sizes each ring to hold it
   * (pairs without entries get MIN_RING_BYTES). Every entry's pair must be in the fabric's pairs.
   */
  readonly traffic?: readonly PairTraffic[];
}

/**
 * The capacity of each directed pair's ring. With traffic: the largest need of the pair's entries
 * (one per step kind, say), at least MIN_RING_BYTES; a pair without entries gets MIN_RING_BYTES.
 */
export function ringSizer(options: RingSizeOptions): (src: string, dst: string) => number {
  const { ringBytes, traffic } = options;
  if (traffic === undefined) {
    const given = (src: string, dst: string): number =>
      typeof ringBytes === 'function' ? ringBytes(src, dst) : (ringBytes ?? DEFAULT_RING_BYTES);
    return (src, dst) => ringCapacity(given(src, dst), src, dst);
  }
  if (ringBytes !== undefined) throw configError('embedded fabric: give ringBytes or traffic, not both');
  const need = new Map<string, number>();
  for (const t of traffic) {
    const key = pairKey(t.src, t.dst);
    need.set(key, Math.max(need.get(key) ?? 0, trafficBytes(t)));
  }
  return (src, dst) => ringCapacity(Math.max(MIN_RING_BYTES, need.get(pairKey(src, dst)) ?? 0), src, dst);
}

function pairKey(src: string, dst: string): string {
  return `${src}\u0000${dst}`;
}
