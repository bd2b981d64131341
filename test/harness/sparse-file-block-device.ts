// A BlockDevice on one sparse file: enough of a disk-backed device to test frontends against.
// Node has no fallocate or SEEK_DATA, so trim and write-zeroes write zeros (a trim may do
// anything, zeros included), and block status is not offered (clients treat all as data).
import { open, type FileHandle } from 'node:fs/promises';
import type { BlockDevice, BlockDeviceCapabilities, BlockExtent, WriteOptions } from '../../src/lib/block-device.ts';
import { IoError, IoErrorCode } from '../../src/lib/errors.ts';
import { requestSizeMaxBytes } from '../../src/lib/limits.ts';

const zeros = new Uint8Array(1024 * 1024);

export class SparseFileBlockDevice implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities = {
    canTrim: true,
    canZeroFast: false,
    canFua: true,
    canFlush: true,
    // One file, one page cache, fdatasync covers writes from every connection.
    canMultiConn: true,
    canBlockStatus: false,
  };
  private readonly file: FileHandle;
  private readonly size: number;

  private constructor(file: FileHandle, sizeBytes: number) {
    this.file = file;
    this.size = sizeBytes;
  }

  static async open(path: string, sizeBytes: number): Promise<SparseFileBlockDevice> {
    const file = await open(path, 'a+');
    await file.close();
    const handle = await open(path, 'r+');
    await handle.truncate(sizeBytes);
    return new SparseFileBlockDevice(handle, sizeBytes);
  }

  sizeBytes(): number {
    return this.size;
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    this.check(offsetBytes, lengthBytes, true);
    const out = new Uint8Array(lengthBytes);
    let done = 0;
    while (done < lengthBytes) {
      const { bytesRead } = await this.file.read(out, done, lengthBytes - done, offsetBytes + done);
      if (bytesRead === 0) break; // past the file's end reads as zeros
      done += bytesRead;
    }
    return out;
  }

  async write(offsetBytes: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.check(offsetBytes, data.length, true);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, offsetBytes + done);
      done += bytesWritten;
    }
    if (options?.fua === true) await this.file.datasync();
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, options?: WriteOptions): Promise<void> {
    this.check(offsetBytes, lengthBytes, false);
    for (let at = 0; at < lengthBytes; at += zeros.length) {
      await this.write(offsetBytes + at, zeros.subarray(0, Math.min(zeros.length, lengthBytes - at)));
    }
    if (options?.fua === true) await this.file.datasync();
  }

  trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.writeZeroes(offsetBytes, lengthBytes);
  }

  flush(): Promise<void> {
    return this.file.datasync();
  }

  blockStatus(offsetBytes: number, lengthBytes: number): Promise<BlockExtent[]> {
    this.check(offsetBytes, lengthBytes, false);
    return Promise.resolve([{ offsetBytes, lengthBytes, allocated: true }]);
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private check(offsetBytes: number, lengthBytes: number, payload: boolean): void {
    if (payload && lengthBytes > requestSizeMaxBytes) {
      throw new IoError(IoErrorCode.invalidArgument, `Cannot do ${lengthBytes} bytes at once: the limit is ${requestSizeMaxBytes}`);
    }
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > this.size) {
      throw new IoError(IoErrorCode.outOfRange, `Cannot access ${lengthBytes} bytes at ${offsetBytes}: device size is ${this.size}`);
    }
  }
}
