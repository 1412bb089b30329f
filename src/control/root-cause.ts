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
  const root =
    [...own].sort((a, b) => rank(a) - rank(b))[0] ??
    notStall[0] ??
    failures.reduce((a, b) => (dueTick(b) < dueTick(a) ? b : a));
  const others = failures.length - 1;
  const e = root.error!;
  const suffix = others > 0 ? ` (${others} other chip(s) stalled behind it)` : '';
  const violations = [
    ...failures
      .map((o) => o.error?.details.violation as Violation | undefined)
      .filter((v): v is Violation => v !== undefined),
    ...all.flatMap((o) => o.result?.violations ?? []),
  ];
  // chips whose worker failed on its own (not stalled behind another): a host's worth means the host went down
  const failedChips = own.filter(workerGone).map((o) => o.chipId);
  return new RunError(fromWireError(e).code, `${e.message}${suffix}`, {
    details: { ...e.details, chip: root.chipId, violations, failedChips },
  });
}

/**
 * Which of several failures of one run came first in cause: a dead chip makes its peers' publishes
 * find no subscriber (a transport error), and a lost connection makes its peers' publishes fail too;
 * the chip that died, or the one whose connection dropped, is the root.
 */
function rank(o: ChipOutcome): number {
  const e = o.error!;
  switch (e.code) {
    case 'RACKEMU_ERR_WORKER':
      return workerGone(o) ? 0 : 1;
    case 'RACKEMU_ERR_CHIP_HANG':
    case 'RACKEMU_ERR_ECC_UNCORRECTABLE':
      return 0;
    case 'RACKEMU_ERR_SCHEDULE_VIOLATION':
      return 1;
    case 'RACKEMU_ERR_TRANSPORT':
      // a lost connection names its server (transport/nats.ts); a failed publish is its consequence
      return e.details.server !== undefined ? 2 : 3;
    default:
      return 4;
  }
}

/** A chip whose worker thread exited or crashed (host-agent.ts), not one that failed with an uncoded error. */
function workerGone(o: ChipOutcome): boolean {
  return o.error?.code === 'RACKEMU_ERR_WORKER' && o.error.details.worker !== undefined;
}
