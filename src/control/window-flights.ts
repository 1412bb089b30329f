import type { StepSamples } from '../runtime/index.js';
import type { PlannedWindow } from './batch-scheduler.js';

/**
 * A window sent to the chips. Its streamed samples are handed on only once every earlier window has
 * completed: a failed window leaves KV caches and the sampler's last ids undefined, so what later
 * windows sample is dropped, and the requests replay (recovery) instead.
 */
export interface Flight {
  readonly planned: PlannedWindow;
  readonly baseTick: number;
  state: 'running' | 'ok' | 'failed';
  /** Sent after a window that failed: what it samples is void, whether it completes or not. */
  void: boolean;
  readonly held: StepSamples[];
}

/** The windows in flight, in the order they were sent, and the samples each may hand on. */
export class WindowFlights {
  private readonly list: Flight[] = [];

  constructor(private readonly deliver: (planned: PlannedWindow, s: StepSamples) => void) {}

  add(planned: PlannedWindow, baseTick: number): Flight {
    const flight: Flight = { planned, baseTick, state: 'running', void: false, held: [] };
    this.list.push(flight);
    return flight;
  }

  clear(): void {
    this.list.length = 0;
  }

  /** `flight` failed: every window sent after it is void (KV caches and last ids are undefined from there). */
  fail(flight: Flight): void {
    flight.state = 'failed';
    let after = false;
    for (const f of this.list) {
      if (after) {
        f.void = true;
        f.held.length = 0;
      }
      if (f === flight) after = true;
    }
  }

  samples(flight: Flight, s: StepSamples): void {
    if (flight.void || !this.list.includes(flight)) return;
    if (this.list[0] !== flight) {
      flight.held.push(s);
      return;
    }
    this.deliver(flight.planned, s);
  }

  /** Completed windows leave the head of the line; the next one's held samples go out. */
  settle(): void {
    while (this.list.length > 0 && this.list[0].state !== 'running') {
      this.list.shift();
      const next = this.list[0];
      if (next === undefined || next.void) continue;
      for (const s of next.held.splice(0)) this.deliver(next.planned, s);
    }
  }
}
