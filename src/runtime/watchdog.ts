import type { ChipEndpoint } from '../transport/index.js';
import type { RunError } from '../util/errors.js';

/**
 * Waiting for frames under the wall-clock watchdog: a frame that has not arrived watchdogMs after a
 * chip began to wait for it is missing, and the run ends with RACKEMU_ERR_WATCHDOG naming it.
 */

/** Longest single block in the transport, so that a fatal error set meanwhile is seen. */
const POLL_SLICE_MS = 250;

/**
 * Polls the shared-memory transport until `missing()` is 0, woken once as many frames as are missing
 * could be in. The watchdog runs inside the loop, since timers cannot fire while the thread is
 * blocked: after `limitMs` it throws `overdue()`; a fatal error of the run (`fatal()`) is thrown at once.
 */
export function pollUntil(
  endpoint: ChipEndpoint,
  limitMs: number,
  fatal: () => RunError | null,
  missing: () => number,
  overdue: () => RunError,
): void {
  const since = Date.now();
  for (;;) {
    const stop = fatal();
    if (stop !== null) throw stop;
    const n = missing();
    if (n === 0) return;
    const waited = Date.now() - since;
    if (waited >= limitMs) throw overdue();
    endpoint.pollSync!(Math.min(POLL_SLICE_MS, limitMs - waited), n);
  }
}

/** How often the event-loop watchdog looks at a wait: a quarter of the limit, within [50 ms, 1 s]. */
export function watchdogIntervalMs(limitMs: number): number {
  return Math.max(50, Math.min(1000, limitMs / 4));
}
