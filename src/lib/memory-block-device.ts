// A sparse BlockDevice in memory: 4 KiB blocks are allocated on first write, holes read as zeros,
// and blockStatus reports which is which. The reference implementation of the BlockDevice contract
// and the device behind frontend tests. Everything it holds is in this process, so a flush has
// nothing to do and covers every connection (multi-conn safe).
import { assert } from './assert.ts';
import type { BlockDevice, BlockDeviceCapabilities, BlockExtent, WriteOptions } from './block-device.ts';
import { IoError, IoErrorCode } from './errors.ts';
import { blockSizeBytes, requestSizeMaxBytes, volumeSizeMaxBytes } from './limits.ts';

export interface MemoryBlockDeviceOptions {
  /** Most bytes of data the device may hold (allocated blocks × 4 KiB); a write past it fails with no_space. */
  readonly allocatedMaxBytes?: number;
}

export class MemoryBlockDevice implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities = {
    canTrim: true,
    canZeroFast: true,
    canFua: true,
    canFlush: true,
    canMultiConn: true,
    canBlockStatus: true,
  };
  private readonly size: number;
  private readonly allocatedMax: number;
  private readonly blocks = new Map<number, Uint8Array>();

  constructor(sizeBytes: number, options: MemoryBlockDeviceOptions = {}) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > volumeSizeMaxBytes) {
      throw new IoError(IoErrorCode.invalidArgument, `Cannot make a ${sizeBytes}-byte device: the size must be 0..${volumeSizeMaxBytes}`);
    }
    const allocatedMax = options.allocatedMaxBytes ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(allocatedMax) || allocatedMax < 0) {
      throw new IoError(IoErrorCode.invalidArgument, `allocatedMaxBytes ${allocatedMax} is not a non-negative integer`);
    }
    this.size = sizeBytes;
    this.allocatedMax = allocatedMax;
  }

  sizeBytes(): number {
    return this.size;
  }

  /** Bytes held in allocated blocks. */
  allocatedBytes(): number {
    return this.blocks.size * blockSizeBytes;
  }

  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return settle(() => {
      this.checkRange('read', offsetBytes, lengthBytes, true);
      const out = new Uint8Array(lengthBytes);
      this.forEachBlock(offsetBytes, lengthBytes, (index, within, at, n) => {
        const block = this.blocks.get(index);
        if (block !== undefined) out.set(block.subarray(within, within + n), at);
      });
      return out;
    });
  }

  write(offsetBytes: number, data: Uint8Array, _options?: WriteOptions): Promise<void> {
    return settle(() => {
      this.checkRange('write', offsetBytes, data.length, true);
      let fresh = 0;
      this.forEachBlock(offsetBytes, data.length, (index) => {
        if (!this.blocks.has(index)) fresh++;
      });
      // Check the space before touching anything, so a failed write changes nothing.
      if (this.allocatedBytes() + fresh * blockSizeBytes > this.allocatedMax) {
        throw new IoError(
          IoErrorCode.noSpace,
          `Cannot write ${data.length} bytes at ${offsetBytes}: ${fresh} new blocks would pass the ${this.allocatedMax}-byte allocation limit`,
        );
      }
      this.forEachBlock(offsetBytes, data.length, (index, within, at, n) => {
        let block = this.blocks.get(index);
        if (block === undefined) {
          block = new Uint8Array(blockSizeBytes);
          this.blocks.set(index, block);
        }
        block.set(data.subarray(at, at + n), within);
      });
    });
  }

  writeZeroes(offsetBytes: number, lengthBytes: number, _options?: WriteOptions): Promise<void> {
    return settle(() => {
      this.checkRange('write zeroes to', offsetBytes, lengthBytes, false);
      this.zero(offsetBytes, lengthBytes);
    });
  }

  trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    return settle(() => {
      this.checkRange('trim', offsetBytes, lengthBytes, false);
      // Nothing below this device can resurface, so trimmed ranges simply read as zeros.
      this.zero(offsetBytes, lengthBytes);
    });
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  blockStatus(offsetBytes: number, lengthBytes: number): Promise<BlockExtent[]> {
    return settle(() => {
      this.checkRange('get block status of', offsetBytes, lengthBytes, false);
      const extents: BlockExtent[] = [];
      const end = offsetBytes + lengthBytes;
      const push = (from: number, to: number, allocated: boolean): void => {
        if (to <= from) return;
        const last = extents[extents.length - 1];
        if (last !== undefined && last.allocated === allocated) {
          extents[extents.length - 1] = { offsetBytes: last.offsetBytes, lengthBytes: to - last.offsetBytes, allocated };
        } else {
          extents.push({ offsetBytes: from, lengthBytes: to - from, allocated });
        }
      };
      let at = offsetBytes;
      for (const index of this.allocatedIndexesIn(offsetBytes, end)) {
        const blockStart = Math.max(index * blockSizeBytes, offsetBytes);
        const blockEnd = Math.min((index + 1) * blockSizeBytes, end);
        push(at, blockStart, false);
        push(blockStart, blockEnd, true);
        at = blockEnd;
      }
      push(at, end, false);
      return extents;
    });
  }

  /** Allocated block indexes touching [from, to), in order; cost follows min(range, allocation). */
  private allocatedIndexesIn(from: number, to: number): number[] {
    if (to <= from) return [];
    const first = Math.floor(from / blockSizeBytes);
    const last = Math.floor((to - 1) / blockSizeBytes);
    if (last - first + 1 <= this.blocks.size) {
      const found: number[] = [];
      for (let i = first; i <= last; i++) if (this.blocks.has(i)) found.push(i);
      return found;
    }
    return [...this.blocks.keys()].filter((i) => i >= first && i <= last).sort((a, b) => a - b);
  }

  private zero(offsetBytes: number, lengthBytes: number): void {
    const end = offsetBytes + lengthBytes;
    for (const index of this.allocatedIndexesIn(offsetBytes, end)) {
      const blockStart = index * blockSizeBytes;
      const within = Math.max(offsetBytes - blockStart, 0);
      const until = Math.min(end - blockStart, blockSizeBytes);
      if (within === 0 && until === blockSizeBytes) {
        this.blocks.delete(index);
      } else {
        this.blocks.get(index)?.fill(0, within, until);
      }
    }
  }

  private checkRange(what: string, offsetBytes: number, lengthBytes: number, payload: boolean): void {
    if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || lengthBytes < 0) {
      throw new IoError(IoErrorCode.invalidArgument, `Cannot ${what} ${lengthBytes} bytes at ${offsetBytes}: not byte counts`);
    }
    if (payload && lengthBytes > requestSizeMaxBytes) {
      throw new IoError(
        IoErrorCode.invalidArgument,
        `Cannot ${what} ${lengthBytes} bytes at ${offsetBytes}: over the ${requestSizeMaxBytes}-byte request limit`,
      );
    }
    if (offsetBytes > this.size || lengthBytes > this.size - offsetBytes) {
      throw new IoError(
        IoErrorCode.outOfRange,
        `Cannot ${what} ${lengthBytes} bytes at ${offsetBytes}: device size is ${this.size}`,
      );
    }
  }

  /** Visit the blocks of a range: block index, offset within it, offset within the range, length. */
  private forEachBlock(
    offsetBytes: number,
    lengthBytes: number,
    visit: (index: number, within: number, at: number, n: number) => void,
  ): void {
    let at = 0;
    while (at < lengthBytes) {
      const pos = offsetBytes + at;
      const index = Math.floor(pos / blockSizeBytes);
      const within = pos - index * blockSizeBytes;
      const n = Math.min(blockSizeBytes - within, lengthBytes - at);
      visit(index, within, at, n);
      at += n;
    }
    assert(at === lengthBytes, 'block walk ends at the range end');
  }
}

/** Run synchronous work as a promise, so that a throw becomes a rejection like real I/O. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
