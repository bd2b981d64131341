// Collects the file reads and writes a replica starts in one turn of the event loop and hands
// them to the addon as one batch per kind: one libuv pool job, one thread wake-up and one
// completion callback for the whole batch instead of one each (the pool hop was the replica's
// largest CPU cost per request). Reads and writes go in separate batches, so a read that waits
// for the disk does not hold up the turn's writes behind it, or the other way round.
import type { NativeFileIo } from './native-file-io.ts';

interface PendingOp {
  readonly fd: number;
  readonly buffer: Uint8Array;
  readonly positionBytes: number;
  readonly resolve: (result: number) => void;
}

export interface FileIoCounters {
  /** Reads answered from the page cache on the event loop (preadv2 RWF_NOWAIT). */
  nowaitReads: number;
  /** Reads that would have touched the disk (EAGAIN) or were partly cached, sent to the pool. */
  nowaitMisses: number;
  /** Operations run in pool batches, and the batches. */
  batchedOps: number;
  batches: number;
}

export class FileIoBatcher {
  private readonly io: NativeFileIo;
  private readonly opsMax: number;
  private reads: PendingOp[] = [];
  private writes: PendingOp[] = [];
  private scheduled = false;
  readonly counters: FileIoCounters = { nowaitReads: 0, nowaitMisses: 0, batchedOps: 0, batches: 0 };

  constructor(io: NativeFileIo, options: { opsMax: number }) {
    if (options.opsMax < 1 || options.opsMax > io.batchMax) throw new RangeError(`batch of ${options.opsMax} operations; the addon takes 1..${io.batchMax}`);
    this.io = io;
    this.opsMax = options.opsMax;
  }

  /** Page-cache read on the event loop: bytes read, or -errno (-EAGAIN: it would wait for the disk). */
  readNowait(fd: number, target: Uint8Array, positionBytes: number): number {
    const n = this.io.preadNowait(fd, target, positionBytes);
    if (n === target.length) this.counters.nowaitReads++;
    else this.counters.nowaitMisses++;
    return n;
  }

  /**
   * Queue a read (until `buffer` is full or end of file) or a whole write for this turn's batch.
   * Resolves with the bytes done or -errno; never rejects (the caller retries a failure through
   * node:fs, which reports it with Node's error object).
   */
  run(isWrite: boolean, fd: number, buffer: Uint8Array, positionBytes: number): Promise<number> {
    return new Promise((resolve) => {
      (isWrite ? this.writes : this.reads).push({ fd, buffer, positionBytes, resolve });
      if (this.scheduled) return;
      this.scheduled = true;
      // setImmediate, not a microtask: every request decoded in this turn's socket reads
      // reaches the queue first, so they share the batch.
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const reads = this.reads;
    const writes = this.writes;
    this.reads = [];
    this.writes = [];
    for (let i = 0; i < reads.length; i += this.opsMax) this.submit(false, reads.slice(i, i + this.opsMax));
    for (let i = 0; i < writes.length; i += this.opsMax) this.submit(true, writes.slice(i, i + this.opsMax));
  }

  private submit(isWrite: boolean, ops: PendingOp[]): void {
    const buffers: Uint8Array[] = new Array<Uint8Array>(ops.length);
    const fdAndPosition = new Float64Array(2 * ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      buffers[i] = op.buffer;
      fdAndPosition[2 * i] = op.fd;
      fdAndPosition[2 * i + 1] = op.positionBytes;
    }
    this.counters.batches++;
    this.counters.batchedOps += ops.length;
    this.io.submit(isWrite, buffers, fdAndPosition, (results) => {
      for (let i = 0; i < ops.length; i++) ops[i]!.resolve(results[i]!);
    });
  }
}
