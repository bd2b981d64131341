// Paces the background checksum computation to a byte rate, so hashing a large sealed layer
// never takes the disk from client I/O. Time and sleeping come in from outside: tests drive a
// ManualClock and measure bytes per (simulated) second exactly.
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Clock } from '../lib/clock.ts';

/** Wait `ms`; rejects (AbortError) when `signal` aborts, so a stopping store is not held up. */
export type PaceSleep = (ms: number, signal: AbortSignal) => Promise<void>;

export const realSleep: PaceSleep = async (ms, signal) => {
  await sleepFor(ms, undefined, { signal });
};

export class ChecksumPacer {
  private readonly bytesPerSecond: number;
  private readonly clock: Clock;
  private readonly sleep: PaceSleep;
  /** The monotonic moment by which everything taken so far may have been read at the rate. */
  private dueMs = -Infinity;

  constructor(options: { bytesPerSecond: number; clock: Clock; sleep: PaceSleep }) {
    this.bytesPerSecond = options.bytesPerSecond;
    this.clock = options.clock;
    this.sleep = options.sleep;
  }

  /**
   * Account for `bytes` just read and wait until the rate allows them. Credit does not pile up
   * while idle (the due moment never lies in the past), so over any run of takes the elapsed time
   * is at least bytes / rate: a strict ceiling, not an average.
   */
  async take(bytes: number, signal: AbortSignal): Promise<void> {
    if (this.bytesPerSecond <= 0 || bytes <= 0) return;
    const nowMs = this.clock.monotonicMs();
    this.dueMs = Math.max(this.dueMs, nowMs) + (bytes * 1000) / this.bytesPerSecond;
    const waitMs = this.dueMs - nowMs;
    if (waitMs > 0) await this.sleep(waitMs, signal);
  }
}
