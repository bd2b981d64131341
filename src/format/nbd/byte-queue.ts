// A queue of received byte chunks that a parser consumes in exact amounts, whatever way the
// transport happened to split them. Chunks are kept by reference (no copy on push); `take` copies
// only when the bytes asked for straddle chunks.
import { assert } from '../../lib/assert.ts';

export class ByteQueue {
  private readonly chunks: Uint8Array[] = [];
  /** Bytes already consumed from chunks[0]. */
  private headOffset = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.chunks.push(bytes);
    this.total += bytes.length;
  }

  /** Remove and return exactly `count` bytes; the caller checked `length` first. */
  take(count: number): Uint8Array {
    assert(count >= 0 && count <= this.total, `take ${count} of ${this.total} queued bytes`);
    const head = this.chunks[0];
    if (head !== undefined && head.length - this.headOffset >= count) {
      const out = head.subarray(this.headOffset, this.headOffset + count);
      this.consume(count);
      return out;
    }
    const out = new Uint8Array(count);
    this.copyInto(out, 0, count);
    return out;
  }

  /** Move `count` bytes into `target` at `targetOffset`, consuming them. */
  copyInto(target: Uint8Array, targetOffset: number, count: number): void {
    assert(count >= 0 && count <= this.total, `copy ${count} of ${this.total} queued bytes`);
    let done = 0;
    while (done < count) {
      const head = this.chunks[0];
      assert(head !== undefined, 'queue length out of step with its chunks');
      const n = Math.min(count - done, head.length - this.headOffset);
      target.set(head.subarray(this.headOffset, this.headOffset + n), targetOffset + done);
      this.consume(n);
      done += n;
    }
  }

  /** Drop `count` bytes (at most `length`); returns how many were dropped. */
  skip(count: number): number {
    const n = Math.min(count, this.total);
    let left = n;
    while (left > 0) {
      const head = this.chunks[0];
      assert(head !== undefined, 'queue length out of step with its chunks');
      const step = Math.min(left, head.length - this.headOffset);
      this.consume(step);
      left -= step;
    }
    return n;
  }

  clear(): void {
    this.chunks.length = 0;
    this.headOffset = 0;
    this.total = 0;
  }

  private consume(count: number): void {
    this.headOffset += count;
    this.total -= count;
    const head = this.chunks[0];
    if (head !== undefined && this.headOffset === head.length) {
      this.chunks.shift();
      this.headOffset = 0;
    }
  }
}
