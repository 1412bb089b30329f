import type { DecodedFrame } from '../transport/frame.js';
import { RunError } from '../util/errors.js';
import type { DueFrame, Violation } from './chip-types.js';

/**
 * The schedule violations one chip records during a run, with the messages that name chip ids and
 * ticks. Which of them end the run is the caller's decision: the methods that return a RunError give
 * the error the run ends with (corrupt, missing, undecodable); the others only record.
 */
export class ViolationLog {
  private list: Violation[] = [];

  constructor(private readonly chipId: string) {}

  /** The violations recorded since the last reset. */
  get recorded(): Violation[] {
    return this.list;
  }

  /** Start a run's record; the previous run's list stays with its result. */
  reset(): void {
    this.list = [];
  }

  private record(v: Omit<Violation, 'message' | 'dst'>, message: string): Violation {
    const full: Violation = { ...v, dst: this.chipId, message: `${v.kind} frame: ${message}` };
    this.list.push(full);
    return full;
  }

  duplicate(step: number, tensor: string, src: string, tick: number): Violation {
    return this.record(
      { kind: 'duplicate', step, tensor, src, tick },
      `${tensor} from ${src} to ${this.chipId} (step ${step}, tick ${tick}) arrived twice; the copy is dropped`,
    );
  }

  unexpected(step: number, tensor: string, src: string): Violation {
    return this.record(
      { kind: 'unexpected', step, tensor, src, tick: -1 },
      `${tensor} from ${src} (step ${step}) is not in ${this.chipId}'s Program`,
    );
  }

  /** This chip's epoch counter is `ticks` off the global epoch: its neighbours' counter exchange shows it. */
  skew(step: number, tick: number, ticks: number): Violation {
    const full: Violation = {
      kind: 'skew',
      step,
      tensor: '-',
      src: this.chipId,
      dst: this.chipId,
      tick,
      message: `clock skew: ${this.chipId}'s epoch counter is ${ticks} ticks off the global epoch at tick ${tick} (step ${step})`,
    };
    this.list.push(full);
    return full;
  }

  /** A frame whose header cannot be decoded: nothing in it can be trusted, so the run ends. */
  undecodable(src: string, cause: unknown): RunError {
    const v = this.record(
      { kind: 'corrupt', step: -1, tensor: '?', src, tick: -1 },
      `undecodable frame from ${src} at ${this.chipId}`,
    );
    return new RunError('RACKEMU_ERR_SCHEDULE_VIOLATION', v.message, { cause, details: { violation: v } });
  }

  /** A frame due at `due` that has not arrived within the watchdog: the run ends. */
  missing(due: DueFrame, watchdogMs: number): RunError {
    const v = this.record(
      { kind: 'missing', step: due.step, tensor: due.tensor, src: due.src, tick: due.tick, needBy: due.needBy },
      `${due.tensor} from ${due.src} to ${this.chipId} (step ${due.step}) was due at tick ${due.tick} ` +
        `and has not arrived after ${watchdogMs} ms of wall time`,
    );
    return new RunError('RACKEMU_ERR_WATCHDOG', v.message, { details: { violation: v } });
  }

  /**
   * Checks a received frame against its Program entry: a failed checksum is returned as the error
   * the run ends with; a frame that arrived after the tick it was needed by is recorded as late.
   */
  check(due: DueFrame, frame: DecodedFrame): RunError | null {
    const tick = frame.header.tick;
    if (frame.integrity === 'mismatch') {
      const v = this.record(
        { kind: 'corrupt', step: due.step, tensor: due.tensor, src: due.src, tick },
        `${due.tensor} from ${due.src} to ${this.chipId} (step ${due.step}, tick ${tick}) failed its checksum`,
      );
      return new RunError('RACKEMU_ERR_SCHEDULE_VIOLATION', v.message, { details: { violation: v } });
    }
    if (tick > due.needBy) {
      this.record(
        { kind: 'late', step: due.step, tensor: due.tensor, src: due.src, tick, needBy: due.needBy },
        `${due.tensor} from ${due.src} to ${this.chipId} (step ${due.step}) arrived at tick ${tick}, ` +
          `needed at tick ${due.needBy} (${tick - due.needBy} ticks late)`,
      );
    }
    return null;
  }
}
