/**
 * How long a peer has been silent, counted only while this process itself was running. A process
 * starved of CPU (hundreds of chip threads on two cores) runs its timers late, and runs them before it
 * reads the messages that waited meanwhile: wall time since the last message would blame the peer for
 * this process's own stall. A check that comes more than a tick late leaves the lateness out.
 */
export class SilenceClock {
  private heardAt: number;
  private checkedAt: number;

  constructor(
    /** How often check() is called (ms). */
    private readonly tickMs: number,
    now = Date.now(),
  ) {
    this.heardAt = now;
    this.checkedAt = now;
  }

  /** The peer was heard from. */
  heard(now = Date.now()): void {
    this.heardAt = now;
    this.checkedAt = Math.max(this.checkedAt, now);
  }

  /** Called every tickMs: the peer's silence in ms, without the time this process was stalled. */
  check(now = Date.now()): number {
    const late = now - this.checkedAt - this.tickMs;
    this.checkedAt = now;
    if (late > this.tickMs) this.heardAt += late;
    return now - this.heardAt;
  }
}
