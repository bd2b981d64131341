// The store's three locks. AsyncMutex serializes chain changes (and flushes); RwGate lets data
// operations run together (shared) and gives chain commits the store to themselves (exclusive,
// preferred over new shared holders so a snapshot is not starved); RangeLock keeps overlapping
// writes, including read-modify-write of partial blocks, from interleaving.

import { toError } from '../lib/errors.ts';

export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(body: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await body();
    } finally {
      release();
    }
  }
}

export class RwGate {
  private shared = 0;
  private exclusive = false;
  private readonly waitingExclusive: (() => void)[] = [];
  private readonly waitingShared: (() => void)[] = [];

  /**
   * Run `body` shared. Without a waiting exclusive holder (the usual case) it starts at once and
   * the gate is released from the body's own promise, without an async wrapper: this runs for
   * every read and write of the replica.
   */
  runShared<T>(body: () => Promise<T>): Promise<T> {
    if (this.exclusive || this.waitingExclusive.length > 0) return this.runSharedWaiting(body);
    this.shared++;
    let work: Promise<T>;
    try {
      work = body();
    } catch (error) {
      this.releaseShared();
      return Promise.reject(toError(error));
    }
    return work.then(
      (value) => {
        this.releaseShared();
        return value;
      },
      (error: unknown) => {
        this.releaseShared();
        throw error;
      },
    );
  }

  private async runSharedWaiting<T>(body: () => Promise<T>): Promise<T> {
    // wake() counts us in before resolving.
    await new Promise<void>((resolve) => this.waitingShared.push(resolve));
    try {
      return await body();
    } finally {
      this.releaseShared();
    }
  }

  private releaseShared(): void {
    this.shared--;
    this.wake();
  }

  async runExclusive<T>(body: () => Promise<T>): Promise<T> {
    if (this.exclusive || this.shared > 0 || this.waitingExclusive.length > 0) {
      await new Promise<void>((resolve) => this.waitingExclusive.push(resolve));
    } else {
      this.exclusive = true;
    }
    try {
      return await body();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }

  /** Hand the gate on: to the next exclusive waiter when idle, else to every shared waiter. */
  private wake(): void {
    if (this.exclusive || this.shared > 0) return;
    const next = this.waitingExclusive.shift();
    if (next !== undefined) {
      this.exclusive = true;
      next();
      return;
    }
    const all = this.waitingShared.splice(0);
    this.shared += all.length;
    for (const resolve of all) resolve();
  }
}

export class RangeLock {
  private readonly held: { start: number; end: number }[] = [];
  private waiters: (() => void)[] = [];

  /**
   * Run `body` with [start, end) to itself. A range that overlaps nothing held (the usual case)
   * starts at once, without an async wrapper: this runs for every write of the replica.
   */
  run<T>(start: number, end: number, body: () => Promise<T>): Promise<T> {
    if (this.overlaps(start, end)) return this.runAfterWait(start, end, body);
    const range = { start, end };
    this.held.push(range);
    let work: Promise<T>;
    try {
      work = body();
    } catch (error) {
      this.release(range);
      return Promise.reject(toError(error));
    }
    return work.then(
      (value) => {
        this.release(range);
        return value;
      },
      (error: unknown) => {
        this.release(range);
        throw error;
      },
    );
  }

  private async runAfterWait<T>(start: number, end: number, body: () => Promise<T>): Promise<T> {
    while (this.overlaps(start, end)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const range = { start, end };
    this.held.push(range);
    try {
      return await body();
    } finally {
      this.release(range);
    }
  }

  private overlaps(start: number, end: number): boolean {
    for (const r of this.held) if (r.start < end && start < r.end) return true;
    return false;
  }

  private release(range: { start: number; end: number }): void {
    this.held.splice(this.held.indexOf(range), 1);
    // Every waiter re-checks its own range; few writes overlap, so this stays cheap.
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
