/**
 * The embedded transport's fabric: for every directed chip pair (src -> dst) the schedule uses, a
 * single-producer/single-consumer byte ring in its own SharedArrayBuffer, and one doorbell slot per
 * chip in a fabric-wide SharedArrayBuffer (layout in embedded-layout.ts). The thread that spawns the
 * chip workers makes it; a SharedArrayBuffer is shared, not copied, when structured-cloned, so a
 * chip's config simply travels in workerData / postMessage.
 */

import { randomUUID } from 'node:crypto';
import { RING_HEADER_BYTES, SLOT_WORDS } from './embedded-layout.js';
import { configError } from './errors.js';
import { ringSizer, type RingSizeOptions } from './ring-size.js';
import type { EmbeddedTransportConfig } from './types.js';

export const DEFAULT_SEND_TIMEOUT_MS = 60_000;

/** How large the rings are (ringBytes or traffic: RingSizeOptions), and how long a send may block. */
export interface EmbeddedFabricOptions extends RingSizeOptions {
  /** How long a send may block on a full ring before it reports an error and drops the frame (default 60 s). */
  readonly sendTimeoutMs?: number;
}

export interface EmbeddedFabric {
  /** Every chip that has a config (those named in pairs or in `chips`). */
  readonly chips: readonly string[];
  /**
   * The config for one chip (each chip's config can be taken once). It holds SharedArrayBuffers only,
   * which structured clone shares: pass it in workerData or a message as is (no transfer list), or to
   * openEndpoint in this thread.
   */
  endpointConfig(chipId: string): EmbeddedTransportConfig;
}

/**
 * Build the shared memory for a run. `pairs` are the (src, dst) transfers the schedule uses (direction
 * and repeats do not matter: both directions get a ring; self-pairs need none); `chips` adds chips that
 * have no traffic.
 */
export function createEmbeddedFabric(
  pairs: Iterable<readonly [string, string]>,
  chips: Iterable<string> = [],
  options: EmbeddedFabricOptions = {},
): EmbeddedFabric {
  const sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
  if (!(sendTimeoutMs > 0))
    throw configError(`embedded sendTimeoutMs must be > 0, got ${sendTimeoutMs}`, { got: sendTimeoutMs });
  const sizeOf = ringSizer(options);
  const outbound = new Map<string, Record<string, SharedArrayBuffer>>();
  const inbound = new Map<string, Record<string, SharedArrayBuffer>>();
  const ensure = (c: string): void => {
    if (outbound.has(c)) return;
    outbound.set(c, Object.create(null) as Record<string, SharedArrayBuffer>);
    inbound.set(c, Object.create(null) as Record<string, SharedArrayBuffer>);
  };
  for (const c of chips) ensure(c);
  for (const [a, b] of pairs) {
    ensure(a);
    ensure(b);
    if (a === b) continue;
    for (const [src, dst] of [
      [a, b],
      [b, a],
    ] as const) {
      const out = outbound.get(src)!;
      if (out[dst] !== undefined) continue;
      const ring = new SharedArrayBuffer(RING_HEADER_BYTES + sizeOf(src, dst));
      out[dst] = ring;
      inbound.get(dst)![src] = ring;
    }
  }
  for (const t of options.traffic ?? []) {
    if (t.src !== t.dst && outbound.get(t.src)?.[t.dst] === undefined) {
      const message = `embedded traffic names ${t.src} -> ${t.dst}, a pair not in the fabric's pair list`;
      throw configError(message, { src: t.src, dst: t.dst });
    }
  }
  const ids = [...outbound.keys()];
  const slotOf = new Map(ids.map((c, i) => [c, i]));
  const doorbells = new SharedArrayBuffer(Math.max(1, ids.length) * SLOT_WORDS * 4);
  const fabricId = randomUUID();
  const taken = new Set<string>();
  return {
    chips: ids,
    endpointConfig(chipId: string) {
      const out = outbound.get(chipId);
      if (out === undefined) throw configError(`chip ${chipId} is not part of this embedded fabric`, { chipId });
      if (taken.has(chipId))
        throw configError(`the embedded config of chip ${chipId} was already handed out`, { chipId });
      taken.add(chipId);
      const inb = inbound.get(chipId)!;
      const slots: Record<string, number> = Object.create(null) as Record<string, number>;
      for (const c of [chipId, ...Object.keys(out), ...Object.keys(inb)]) slots[c] = slotOf.get(c)!;
      return { kind: 'embedded', chipId, fabricId, doorbells, slots, outbound: out, inbound: inb, sendTimeoutMs };
    },
  };
}
