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
