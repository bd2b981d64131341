// ReplicaFiles on the local file system: the production driver. Reads try the page cache on the
// event loop first (preadv2 RWF_NOWAIT through the shorthorn_file_io addon), and what must wait
// for the disk, and every write, goes to libuv's pool in one batch per turn of the loop
// (file-io-batcher.ts). Without the addon, reads and writes are node:fs calls, one pool job each.
// sync() is fdatasync; syncDir() fsyncs the directory so creations and renames are durable.
import { read as readCallback, write as writeCallback } from 'node:fs';
import { open, readdir, mkdir, rename, rm, type FileHandle } from 'node:fs/promises';
import type { FileOpenMode, ReplicaFile, ReplicaFiles } from '../replica-files.ts';
import { FileIoBatcher, type FileIoCounters } from './file-io-batcher.ts';
import { nativeFileIo, type NativeFileIo } from './native-file-io.ts';

/**
 * Operations one pool-thread batch runs (a turn's writes share one thread hop): small enough that
 * the last write of a batch waits behind at most this many. Kept here, beside the only user, not in
 * limits.ts: it bounds no memory or queue (the batch holds requests already admitted).
 */
export const fileBatchOpsMax = 64;

const flagsOf: Readonly<Record<FileOpenMode, string>> = { read: 'r', write: 'r+', create: 'w+' };

/** preadv2's answer when the page cache cannot serve a read without the disk. */
const eagain = -11;

class NodeReplicaFile implements ReplicaFile {
  private readonly handle: FileHandle;
  private readonly batcher: FileIoBatcher | undefined;
  /**
   * False once this file refused RWF_NOWAIT itself (EOPNOTSUPP on a kernel before 4.14 or a file
   * system without it, e.g. some FUSE or network ones): its reads then go straight to the batch
   * instead of paying a failing system call first.
   */
  private nowait = true;

  constructor(handle: FileHandle, batcher: FileIoBatcher | undefined) {
    this.handle = handle;
    this.batcher = batcher;
  }

  // Reads and writes go through the raw descriptor, not FileHandle's promise methods: those cost
  // about three times the CPU per 4 KiB request (measured: 35k vs 105k reads/s on this machine),
  // and this is the replica's hottest path.
  read(target: Uint8Array, positionBytes: number): Promise<number> {
    const batcher = this.batcher;
    if (batcher === undefined || target.length === 0) return this.readPooled(target, positionBytes);
    const fd = this.handle.fd;
    const cached = this.nowait ? batcher.readNowait(fd, target, positionBytes) : eagain;
    if (cached < 0 && cached !== eagain) this.nowait = false;
    // All of it, or end of file right at the start: answered without leaving the event loop.
    if (cached === target.length || cached === 0) return Promise.resolve(cached);
    // A partial answer is the end of the file or a range only partly cached: the pool reads on.
    const done = Math.max(cached, 0);
    return batcher.run(false, fd, target.subarray(done), positionBytes + done).then((n) => (n >= 0 ? done + n : this.readPooled(target, positionBytes)));
  }

  /** node:fs read, one pool job per call; a short read goes on until end of file. */
  private readPooled(target: Uint8Array, positionBytes: number): Promise<number> {
    return preadOnce(this.handle.fd, target, 0, positionBytes).then((n) =>
      n === target.length || n === 0 ? n : this.readRest(target, positionBytes, n),
    );
  }

  private async readRest(target: Uint8Array, positionBytes: number, done: number): Promise<number> {
    while (done < target.length) {
      const bytesRead = await preadOnce(this.handle.fd, target, done, positionBytes + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  write(data: Uint8Array, positionBytes: number): Promise<void> {
    const batcher = this.batcher;
    if (batcher === undefined || data.length === 0) return this.writePooled(data, positionBytes);
    // A failed batched write is done again through node:fs: the caller gets Node's error (code
    // ENOSPC, EIO...) exactly as without the addon, and a pwrite repeated at the same place is harmless.
    return batcher.run(true, this.handle.fd, data, positionBytes).then((n) => (n === data.length ? undefined : this.writePooled(data, positionBytes)));
  }

  private writePooled(data: Uint8Array, positionBytes: number): Promise<void> {
    return pwriteOnce(this.handle.fd, data, 0, positionBytes).then((n) => (n === data.length ? undefined : this.writeRest(data, positionBytes, n)));
  }

  private async writeRest(data: Uint8Array, positionBytes: number, done: number): Promise<void> {
    while (done < data.length) {
      done += await pwriteOnce(this.handle.fd, data, done, positionBytes + done);
    }
  }

  sync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(sizeBytes: number): Promise<void> {
    return this.handle.truncate(sizeBytes);
  }

  async sizeBytes(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

function preadOnce(fd: number, target: Uint8Array, offset: number, positionBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    readCallback(fd, target, offset, target.length - offset, positionBytes, (error, bytesRead) => {
      if (error === null) resolve(bytesRead);
      else reject(error);
    });
  });
}

function pwriteOnce(fd: number, data: Uint8Array, offset: number, positionBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    writeCallback(fd, data, offset, data.length - offset, positionBytes, (error, bytesWritten) => {
      if (error === null) resolve(bytesWritten);
      else reject(error);
    });
  });
}

export interface NodeReplicaFilesOptions {
  /** The addon to use; null runs on node:fs alone. Default: the addon if it loads (nativeFileIo()). */
  readonly native?: NativeFileIo | null;
}

export class NodeReplicaFiles implements ReplicaFiles {
  private readonly batcher: FileIoBatcher | undefined;

  constructor(options: NodeReplicaFilesOptions = {}) {
    const native = options.native === undefined ? loadedNative() : options.native;
    this.batcher = native === null ? undefined : new FileIoBatcher(native, { opsMax: fileBatchOpsMax });
  }

  /** How file I/O runs: through the addon (with its counters) or through node:fs alone. */
  fileIo(): { readonly kind: 'native'; readonly counters: Readonly<FileIoCounters> } | { readonly kind: 'node-fs' } {
    return this.batcher === undefined ? { kind: 'node-fs' } : { kind: 'native', counters: this.batcher.counters };
  }

  async open(path: string, mode: FileOpenMode): Promise<ReplicaFile> {
    return new NodeReplicaFile(await open(path, flagsOf[mode], 0o600), this.batcher);
  }

  list(dir: string): Promise<string[]> {
    return readdir(dir);
  }

  async mkdir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  remove(path: string): Promise<void> {
    return rm(path, { force: true });
  }

  async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

function loadedNative(): NativeFileIo | null {
  const load = nativeFileIo();
  return load.kind === 'loaded' ? load.io : null;
}
