// Time comes in through this port so that tests and the simulator can drive it.

export interface Clock {
  /** Milliseconds since the Unix epoch (wall clock; may jump). */
  nowMs(): number;
  /** A monotonic reading in milliseconds, for durations and timeouts. */
  monotonicMs(): number;
}

/** A clock moved by hand: for unit tests and the simulator. */
export class ManualClock implements Clock {
  private wallMs: number;
  private monoMs = 0;
  constructor(startMs = 1_700_000_000_000) {
    this.wallMs = startMs;
  }
  nowMs(): number {
    return this.wallMs;
  }
  monotonicMs(): number {
    return this.monoMs;
  }
  advance(ms: number): void {
    this.wallMs += ms;
    this.monoMs += ms;
  }
  /** Jump the wall clock only (NTP step); monotonic time is unaffected. */
  jumpWall(ms: number): void {
    this.wallMs += ms;
  }
}
