// The snapshot barrier: writes run shared; an exclusive operation (snapshot, expand, a change of
// the write set) waits for in-flight writes to drain, holds new ones back, runs, and lets them go.
// Exclusive waiters take precedence over new shared arrivals, so a steady write load cannot
// starve a snapshot.

export class WriteBarrier {
  private sharedActive = 0;
  private exclusiveActive = false;
  private readonly exclusiveQueue: (() => void)[] = [];
  private sharedQueue: (() => void)[] = [];
  private drained: (() => void) | null = null;

  /**
   * Enter shared at once if nothing exclusive runs or waits (the usual case for a write), without
   * an async wrapper; the caller must call leaveShared() exactly once after. False: use shared().
   */
  tryEnterShared(): boolean {
    if (this.exclusiveActive || this.exclusiveQueue.length > 0) return false;
    this.sharedActive += 1;
    return true;
  }

  leaveShared(): void {
    this.sharedActive -= 1;
    if (this.sharedActive === 0 && this.drained !== null) {
      const wake = this.drained;
      this.drained = null;
      wake();
    }
  }

  async shared<T>(run: () => Promise<T>): Promise<T> {
    if (this.exclusiveActive || this.exclusiveQueue.length > 0) {
      await new Promise<void>((resolve) => this.sharedQueue.push(resolve));
    } else {
      this.sharedActive += 1;
    }
    try {
      return await run();
    } finally {
      this.leaveShared();
    }
  }

  async exclusive<T>(run: () => Promise<T>): Promise<T> {
    if (this.exclusiveActive || this.exclusiveQueue.length > 0) {
      await new Promise<void>((resolve) => this.exclusiveQueue.push(resolve));
    } else {
      this.exclusiveActive = true;
    }
    try {
      if (this.sharedActive > 0) {
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
      }
      return await run();
    } finally {
      const next = this.exclusiveQueue.shift();
      if (next !== undefined) {
        // Hand over directly: exclusiveActive stays true.
        next();
      } else {
        this.exclusiveActive = false;
        const waiting = this.sharedQueue;
        this.sharedQueue = [];
        this.sharedActive += waiting.length;
        for (const wake of waiting) wake();
      }
    }
  }
}
