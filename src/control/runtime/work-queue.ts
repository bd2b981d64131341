// A controller's work queue, after client-go's: keys are de-duplicated while they wait, a key is
// never handed to two workers at once (added again while being processed, it waits until done()),
// and failed keys come back after an exponential back-off. Timers come in through a port.
import { AssertionError } from '../../lib/assert.ts';
import { reconcileBackoffBaseMs, reconcileBackoffMaxMs, workQueueLengthMax } from '../../lib/limits.ts';
import type { Clock } from '../../lib/clock.ts';
import type { Timers } from './timers.ts';

export interface WorkQueueOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

export class WorkQueue {
  private readonly timers: Timers;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly queue: string[] = [];
  /** Keys waiting to be processed (in `queue`, or to be re-queued when their worker is done). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { dueMs: number; cancel: () => void }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  private readonly clock: Clock;

  constructor(options: WorkQueueOptions) {
    this.clock = options.clock;
    this.timers = options.timers;
    this.backoffBaseMs = options.backoffBaseMs ?? reconcileBackoffBaseMs;
    this.backoffMaxMs = options.backoffMaxMs ?? reconcileBackoffMaxMs;
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    if (this.dirty.size >= workQueueLengthMax) {
      // Keys are object names, de-duplicated: more than this many means a runaway producer.
      throw new AssertionError(`work queue holds ${this.dirty.size} keys; limit ${workQueueLengthMax}`);
    }
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Add after `delayMs`; of several pending delays for one key the earliest wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const dueMs = this.clock.monotonicMs() + delayMs;
    const pending = this.delayed.get(key);
    if (pending !== undefined && pending.dueMs <= dueMs) return;
    pending?.cancel();
    const cancel = this.timers.after(delayMs, () => {
      this.delayed.delete(key);
      this.add(key);
    });
    this.delayed.set(key, { dueMs, cancel });
  }

  /** Requeue after a failure: base × 2^(failures − 1), capped. Returns the delay chosen. */
  addRateLimited(key: string): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delayMs = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(failures - 1, 52));
    this.addAfter(key, delayMs);
    return delayMs;
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The key succeeded: its next failure starts the back-off from the beginning. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The next key to process, or undefined once shut down. Call done(key) when finished. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (!this.dirty.has(key) || this.shuttingDown) return;
    this.dirty.delete(key);
    this.add(key);
  }

  /** Stop handing out keys; workers waiting in get() receive undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { cancel } of this.delayed.values()) cancel();
    this.delayed.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
