// The heart of the simulator: one seeded PRNG, one simulated clock and one queue of timed events.
// Everything that would wait on the outside world (a disk operation, a network message, a
// timeout) is an event here; the loop lets the microtask queue drain, pops the earliest event
// (ties broken by insertion order), moves the clock to it and runs it. Random latencies decide the
// order in which concurrent I/O completes, so one seed gives one interleaving, every time.
//
// The only real asynchrony used is setImmediate, to let promise reactions run to quiescence
// between two events: it carries no time and, with no real I/O pending, no nondeterminism.
import type { Clock } from '../../src/lib/clock.ts';
import { SeededRandom } from '../../src/lib/random.ts';

/**
 * Simulated time. Monotonic time has sub-millisecond resolution (latencies are fractions of a
 * millisecond); the wall clock reads whole milliseconds, as Date.now() does.
 */
export class SimClock implements Clock {
  private monoMs = 0;
  private readonly wallStartMs: number;
  constructor(wallStartMs = 1_700_000_000_000) {
    this.wallStartMs = wallStartMs;
  }
  nowMs(): number {
    return this.wallStartMs + Math.floor(this.monoMs);
  }
  monotonicMs(): number {
    return this.monoMs;
  }
  advance(ms: number): void {
    this.monoMs += ms;
  }
}

export class SimStuck extends Error {
  override readonly name = 'SimStuck';
}

interface SimEvent {
  readonly atMs: number;
  readonly order: number;
  readonly label: string;
  readonly action: () => void;
  cancelled: boolean;
}

export interface SimTimer {
  cancel(): void;
}

/** Trace lines kept when not recording the whole trace (enough to see how a failure came about). */
const traceTailMax = 400;

export class SimScheduler {
  readonly random: SeededRandom;
  readonly clock = new SimClock();
  private readonly heap: SimEvent[] = [];
  private order = 0;
  /** Events run so far. */
  eventCount = 0;
  /** A logical stamp that increases at every event and every `stamp()` call: orders what happened. */
  private stampCounter = 0;
  private readonly traceLines: string[] = [];
  private readonly traceAll: boolean;
  /** Errors of spawned tasks that nobody expected: each is a simulator or system failure. */
  readonly taskErrors: string[] = [];
  private readonly drain: () => Promise<void>;
  private readonly eventsMax: number;

  constructor(seed: number, options: { traceAll?: boolean; eventsMax?: number } = {}) {
    this.eventsMax = options.eventsMax ?? 500_000;
    this.random = new SeededRandom(seed);
    this.traceAll = options.traceAll ?? false;
    this.drain = () => new Promise<void>((resolve) => setImmediate(resolve));
  }

  get nowMs(): number {
    return this.clock.monotonicMs();
  }

  /** A logical timestamp: later calls return larger numbers. */
  stamp(): number {
    return ++this.stampCounter;
  }

  trace(line: string): void {
    this.traceLines.push(`${this.nowMs.toFixed(3).padStart(10)} ${line}`);
    if (!this.traceAll && this.traceLines.length > 2 * traceTailMax) this.traceLines.splice(0, this.traceLines.length - traceTailMax);
  }

  traceText(): string {
    return this.traceLines.join('\n');
  }

  /** Run `action` after `delayMs` of simulated time. */
  schedule(delayMs: number, label: string, action: () => void): SimTimer {
    const event: SimEvent = { atMs: this.nowMs + Math.max(0, delayMs), order: this.order++, label, action, cancelled: false };
    this.push(event);
    return { cancel: () => (event.cancelled = true) };
  }

  /**
   * Start an async task the simulation owns. A rejection is recorded as a task error (the run
   * fails with it) unless `onError` handles it; nothing is left floating.
   */
  spawn(label: string, task: () => Promise<void>, onError?: (error: unknown) => void): void {
    task().catch((error: unknown) => {
      if (onError !== undefined) {
        onError(error);
        return;
      }
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      this.taskErrors.push(`${label}: ${message}`);
      this.trace(`task ${label} failed: ${message.split('\n')[0] ?? ''}`);
    });
  }

  /** Pending (not cancelled) events. */
  pendingEvents(): number {
    return this.heap.filter((e) => !e.cancelled).length;
  }

  /**
   * Run events until `done()` holds after the microtasks of the last event have drained.
   * Throws SimStuck if no event is left while `done()` is still false (something waits forever),
   * or if simulated time passes `deadlineMs`.
   */
  async runUntil(done: () => boolean, what: string, deadlineMs = Infinity): Promise<void> {
    for (;;) {
      await this.drain();
      if (done()) return;
      const event = this.pop();
      if (event === undefined) throw new SimStuck(`stuck waiting for ${what}: no event left at ${this.nowMs} ms`);
      if (event.atMs > deadlineMs) {
        this.push(event);
        throw new SimStuck(`stuck waiting for ${what}: still not done at ${deadlineMs} ms`);
      }
      this.runEvent(event);
    }
  }

  /** Run events until the promise settles; returns its outcome. */
  async settle<T>(promise: Promise<T>, what: string, deadlineMs = Infinity): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    promise.then(
      (value) => (outcome = { ok: true, value }),
      (error: unknown) => (outcome = { ok: false, error }),
    );
    await this.runUntil(() => outcome !== undefined, what, deadlineMs);
    return outcome!;
  }

  /** Run every event due up to `untilMs` (later ones stay queued), then move the clock there. */
  async runFor(durationMs: number): Promise<void> {
    const untilMs = this.nowMs + durationMs;
    for (;;) {
      await this.drain();
      const event = this.pop();
      if (event === undefined) break;
      if (event.atMs > untilMs) {
        this.push(event);
        break;
      }
      this.runEvent(event);
    }
    if (untilMs > this.nowMs) this.clock.advance(untilMs - this.nowMs);
    await this.drain();
  }

  private runEvent(event: SimEvent): void {
    if (this.eventCount >= this.eventsMax) {
      throw new SimStuck(`no end after ${this.eventsMax} events (a livelock, or a workload too large for the budget)`);
    }
    if (event.atMs > this.nowMs) this.clock.advance(event.atMs - this.nowMs);
    this.eventCount++;
    this.stampCounter++;
    event.action();
  }

  // A binary heap ordered by (atMs, order): the earliest event first, ties in scheduling order.
  private push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): SimEvent | undefined {
    const heap = this.heap;
    for (;;) {
      const top = heap[0];
      if (top === undefined) return undefined;
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
          if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
          if (m === i) break;
          [heap[i], heap[m]] = [heap[m]!, heap[i]!];
          i = m;
        }
      }
      if (!top.cancelled) return top;
    }
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
}
