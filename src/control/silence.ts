/**
 * How long a peer has been silent, counted only while this process itself was running. A process
 * starved of CPU (hundreds of chip threads on two cores) runs its timers late, and runs them before it
 * reads the messages that waited meanwhile: wall time since the last message would blame the peer for
 * this process's own stall. A check that comes more than a tick late leaves the lateness out.
 */

/** The stalls of this process, as seen by a check meant to run every `tickMs`. */
export class StallMeter {
  private checkedAt: number;

  constructor(
    private readonly tickMs: number,
    now = Date.now(),
  ) {
    this.checkedAt = now;
  }

  /** Called every tickMs: how long this process was stalled since the last check (0 when on time). */
  stalled(now = Date.now()): number {
    const late = now - this.checkedAt - this.tickMs;
    this.checkedAt = now;
    return late > this.tickMs ? late : 0;
  }

  /** Counts lateness from `now` on (something was heard: the stall before it is over). */
  restart(now: number): void {
    this.checkedAt = Math.max(this.checkedAt, now);
  }
}

export class SilenceClock {
  private heardAt: number;
  private readonly stalls: StallMeter;

  constructor(
    /** How often check() is called (ms). */
    tickMs: number,
    now = Date.now(),
  ) {
    this.heardAt = now;
    this.stalls = new StallMeter(tickMs, now);
  }

  /** The peer was heard from. */
  heard(now = Date.now()): void {
    this.heardAt = now;
    this.stalls.restart(now);
  }

  /** Called every tickMs: the peer's silence in ms, without the time this process was stalled. */
  check(now = Date.now()): number {
    this.heardAt += this.stalls.stalled(now);
    return now - this.heardAt;
  }
}
