// A shared/exclusive lock over async work. The replica server runs every request shared except
// `open`, which runs exclusive: once `open` with a new epoch resolves, no request of an older
// epoch is still running. Writer-preferring: a waiting exclusive holder stops new shared ones, so
// a stream of writes cannot starve it.
import { assert } from '../lib/assert.ts';

interface Waiter {
  readonly mode: 'shared' | 'exclusive';
  readonly wake: () => void;
}

export class AsyncRwLock {
  private sharedHolders = 0;
  private exclusiveHeld = false;
  private readonly waiters: Waiter[] = [];

  async shared<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire('shared');
    try {
      return await work();
    } finally {
      this.release('shared');
    }
  }

  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire('exclusive');
    try {
      return await work();
    } finally {
      this.release('exclusive');
    }
  }

  /** Enter shared now if nothing stands in the way (the usual case); pair with releaseShared(). */
  tryShared(): boolean {
    if (!this.canEnter('shared')) return false;
    this.enter('shared');
    return true;
  }

  releaseShared(): void {
    this.release('shared');
  }

  private canEnter(mode: Waiter['mode']): boolean {
    if (this.exclusiveHeld) return false;
    return mode === 'shared' ? this.waiters.length === 0 : this.sharedHolders === 0;
  }

  private acquire(mode: Waiter['mode']): Promise<void> {
    if (this.canEnter(mode)) {
      this.enter(mode);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push({ mode, wake: resolve }));
  }

  private enter(mode: Waiter['mode']): void {
    if (mode === 'shared') this.sharedHolders++;
    else this.exclusiveHeld = true;
  }

  private release(mode: Waiter['mode']): void {
    if (mode === 'shared') {
      assert(this.sharedHolders > 0, 'shared release without holder');
      this.sharedHolders--;
    } else {
      assert(this.exclusiveHeld, 'exclusive release without holder');
      this.exclusiveHeld = false;
    }
    // Wake waiters in arrival order: one exclusive, or a run of shared ones.
    while (this.waiters.length > 0 && !this.exclusiveHeld) {
      const next = this.waiters[0]!;
      if (next.mode === 'exclusive' && this.sharedHolders > 0) break;
      this.waiters.shift();
      this.enter(next.mode);
      next.wake();
    }
  }
}
