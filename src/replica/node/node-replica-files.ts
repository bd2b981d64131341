// ReplicaFiles on the local file system through node:fs/promises: the production driver.
// sync() is fdatasync; syncDir() fsyncs the directory so creations and renames are durable.
import { open, readdir, mkdir, rename, rm, type FileHandle } from 'node:fs/promises';
import type { FileOpenMode, ReplicaFile, ReplicaFiles } from '../replica-files.ts';

const flagsOf: Readonly<Record<FileOpenMode, string>> = { read: 'r', write: 'r+', create: 'w+' };

class NodeReplicaFile implements ReplicaFile {
  private readonly handle: FileHandle;

  constructor(handle: FileHandle) {
    this.handle = handle;
  }

  async read(target: Uint8Array, positionBytes: number): Promise<number> {
    let done = 0;
    while (done < target.length) {
      const { bytesRead } = await this.handle.read(target, done, target.length - done, positionBytes + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async write(data: Uint8Array, positionBytes: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, positionBytes + done);
      done += bytesWritten;
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
