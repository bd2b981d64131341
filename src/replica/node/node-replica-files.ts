// ReplicaFiles on the local file system through node:fs/promises: the production driver.
// sync() is fdatasync; syncDir() fsyncs the directory so creations and renames are durable.
import { read as readCallback, write as writeCallback } from 'node:fs';
import { open, readdir, mkdir, rename, rm, type FileHandle } from 'node:fs/promises';
import type { FileOpenMode, ReplicaFile, ReplicaFiles } from '../replica-files.ts';

const flagsOf: Readonly<Record<FileOpenMode, string>> = { read: 'r', write: 'r+', create: 'w+' };

class NodeReplicaFile implements ReplicaFile {
  private readonly handle: FileHandle;

  constructor(handle: FileHandle) {
    this.handle = handle;
  }

  // Reads and writes go through the callback API on the raw descriptor: FileHandle's promise
  // methods cost about three times the CPU per 4 KiB request (measured: 35k vs 105k reads/s on
  // this machine), and this is the replica's hottest path.
  // A file read or write almost always completes in one call: only a short one takes the loop.
  read(target: Uint8Array, positionBytes: number): Promise<number> {
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

export class NodeReplicaFiles implements ReplicaFiles {
  async open(path: string, mode: FileOpenMode): Promise<ReplicaFile> {
    return new NodeReplicaFile(await open(path, flagsOf[mode], 0o600));
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
