// Timers come in through this port, beside lib/clock.ts, so that the controller runtime and the
// embedded store's watch polling can be driven by tests and the simulator without sleeping.
import type { Clock, ManualClock } from '../../lib/clock.ts';

export interface Timers {
  /** Run `fn` once after `delayMs`; the returned function cancels it (idempotent). */
  after(delayMs: number, fn: () => void): () => void;
}

/** The machine's clocks, for production wiring. */
export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};

export const realTimers: Timers = {
  after(delayMs, fn) {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    return () => clearTimeout(handle);
  },
};

interface PendingTimer {
  readonly dueMs: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Timers fired by hand against a ManualClock: advance(ms) runs what falls due, in order. */
export class ManualTimers implements Timers {
  private readonly clock: ManualClock;
  private pending: PendingTimer[] = [];
  private seq = 0;

  constructor(clock: ManualClock) {
    this.clock = clock;
  }

  after(delayMs: number, fn: () => void): () => void {
    const timer: PendingTimer = { dueMs: this.clock.monotonicMs() + Math.max(0, delayMs), seq: this.seq++, fn };
    this.pending.push(timer);
    return () => {
      this.pending = this.pending.filter((t) => t !== timer);
    };
  }

  /** Timers not yet fired. */
  get size(): number {
    return this.pending.length;
  }

  /** Move the clock forward by `ms`, firing each timer at its due time (earliest first). */
  advance(ms: number): void {
    const endMs = this.clock.monotonicMs() + ms;
    for (;;) {
      const next = this.pending
        .filter((t) => t.dueMs <= endMs)
        .sort((a, b) => a.dueMs - b.dueMs || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.pending = this.pending.filter((t) => t !== next);
      const step = next.dueMs - this.clock.monotonicMs();
      if (step > 0) this.clock.advance(step);
      next.fn();
    }
    const rest = endMs - this.clock.monotonicMs();
    if (rest > 0) this.clock.advance(rest);
  }
}
