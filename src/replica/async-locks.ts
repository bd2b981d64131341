// The store's three locks. AsyncMutex serializes chain changes (and flushes); RwGate lets data
// operations run together (shared) and gives chain commits the store to themselves (exclusive,
// preferred over new shared holders so a snapshot is not starved); RangeLock keeps overlapping
// writes, including read-modify-write of partial blocks, from interleaving.

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

  async runShared<T>(body: () => Promise<T>): Promise<T> {
    if (this.exclusive || this.waitingExclusive.length > 0) {
      await new Promise<void>((resolve) => this.waitingShared.push(resolve));
    } else {
      this.shared++;
    }
    try {
      return await body();
    } finally {
      this.shared--;
      this.wake();
    }
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

  async run<T>(start: number, end: number, body: () => Promise<T>): Promise<T> {
    while (this.held.some((r) => r.start < end && start < r.end)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const range = { start, end };
    this.held.push(range);
    try {
      return await body();
    } finally {
      this.held.splice(this.held.indexOf(range), 1);
      // Every waiter re-checks its own range; few writes overlap, so this stays cheap.
      const waiters = this.waiters;
      this.waiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
