// Orders overlapping operations on a volume: an operation waits for every earlier operation whose
// range overlaps its own, in arrival order (FIFO per overlap), and runs alongside those that do
// not overlap. The engine takes it over whole blocks, so a read-modify-write of a partial block
// can never interleave with another write to that block (Longhorn #4354-style races).
import { assert } from '../lib/assert.ts';

interface Holder {
  readonly startBytes: number;
  readonly endBytes: number;
  /** Created only when a later arrival must wait (most writes overlap nothing). */
  done: Promise<void> | undefined;
  wake: (() => void) | undefined;
}

export class RangeLock {
  private readonly held = new Set<Holder>();

  /**
   * The range at once when no holder overlaps it (most writes), without a promise: the release
   * function, or undefined when the caller must acquire() and wait.
   */
  tryAcquire(offsetBytes: number, lengthBytes: number): (() => void) | undefined {
    assert(lengthBytes > 0, 'range lock of no bytes');
    const endBytes = offsetBytes + lengthBytes;
    for (const holder of this.held) {
      if (holder.startBytes < endBytes && offsetBytes < holder.endBytes) return undefined;
    }
    const holder: Holder = { startBytes: offsetBytes, endBytes, done: undefined, wake: undefined };
    this.held.add(holder);
    return this.releaser(holder);
  }

  /**
   * Waits until no earlier holder overlaps [offsetBytes, offsetBytes + lengthBytes), then returns
   * the release function. Later arrivals that overlap wait for this one.
   */
  async acquire(offsetBytes: number, lengthBytes: number): Promise<() => void> {
    assert(lengthBytes > 0, `range lock of ${lengthBytes} bytes`);
    const startBytes = offsetBytes;
    const endBytes = offsetBytes + lengthBytes;
    let waitFor: Promise<void>[] | undefined;
    for (const holder of this.held) {
      if (holder.startBytes < endBytes && startBytes < holder.endBytes) {
        holder.done ??= new Promise<void>((resolve) => {
          holder.wake = resolve;
        });
        (waitFor ??= []).push(holder.done);
      }
    }
    const holder: Holder = { startBytes, endBytes, done: undefined, wake: undefined };
    // Registered before waiting, so that every later overlapping arrival queues behind us.
    this.held.add(holder);
    if (waitFor !== undefined) await Promise.all(waitFor);
    return this.releaser(holder);
  }

  private releaser(holder: Holder): () => void {
    let released = false;
    return () => {
      assert(!released, 'range lock released twice');
      released = true;
      this.held.delete(holder);
      holder.wake?.();
    };
  }

  /** Number of holders (waiting or running): for tests and status. */
  size(): number {
    return this.held.size;
  }
}
