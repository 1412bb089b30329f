import type { Violation } from '../runtime/index.js';
import { RunError } from '../util/errors.js';
import { fromWireError, type ChipOutcome } from './host-agent.js';

/**
 * One failed run, many failed chips: once a frame goes missing, every chip downstream of it stalls
 * and its watchdog fires too. The root cause is a failure that is not a stall (a corrupt frame, a
 * crashed worker), else the missing frame that was due earliest in virtual time.
 */
export function rootCause(failures: ChipOutcome[], all: ChipOutcome[]): RunError {
  const dueTick = (o: ChipOutcome) => (o.error?.details.violation as Violation | undefined)?.tick ?? -1;
  const notStall = failures.filter((o) => o.error?.code !== 'RACKEMU_ERR_WATCHDOG');
  // a host that did not answer in time is a consequence when a chip failed for a reason of its own
  const own = notStall.filter((o) => o.error?.code !== 'RACKEMU_ERR_HOSTS_MISSING');
  const root = own[0] ?? notStall[0] ?? failures.reduce((a, b) => (dueTick(b) < dueTick(a) ? b : a));
  const others = failures.length - 1;
  const e = root.error!;
  const suffix = others > 0 ? ` (${others} other chip(s) stalled behind it)` : '';
  const violations = [
    ...failures
      .map((o) => o.error?.details.violation as Violation | undefined)
      .filter((v): v is Violation => v !== undefined),
    ...all.flatMap((o) => o.result?.violations ?? []),
  ];
  // chips that failed on their own (not stalled behind another): a host's worth means the host went down
  const failedChips = own.map((o) => o.chipId);
  return new RunError(fromWireError(e).code, `${e.message}${suffix}`, {
    details: { ...e.details, chip: root.chipId, violations, failedChips },
  });
}
