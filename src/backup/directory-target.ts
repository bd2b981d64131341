// A backup target in a local directory (vfs:///path, and NFS once mounted). A write goes to a
// temporary file in the destination directory, is fsynced, renamed over the destination, and
// the directory is fsynced: after a crash the object is whole or absent. Temporary files start
// with "." so listings skip them (no valid key segment does).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { checkKey, type BackupTarget, type BackupTargetEntry } from './backup-target.ts';

function errnoOf(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function ioError(what: string, error: unknown): BackupError {
  if (error instanceof BackupError) return error;
  const code = errnoOf(error);
  if (code === 'ENOENT') return new BackupError(BackupErrorCode.notFound, `${what}: not found`, { cause: error });
  return new BackupError(BackupErrorCode.io, `${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

export class DirectoryTarget implements BackupTarget {
  readonly url: string;
  readonly root: string;

  constructor(root: string, url = `vfs://${root}`) {
    this.root = root;
    this.url = url;
  }

  private path(key: string): string {
    return join(this.root, checkKey(key));
  }

  async *list(prefix: string): AsyncIterable<BackupTargetEntry> {
    checkKey(prefix, { allowEmpty: true });
    const stack = [prefix];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let names: string[];
      try {
        names = await readdir(join(this.root, dir));
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') continue;
        throw ioError(`list ${dir}`, error);
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const key = dir === '' ? name : `${dir}/${name}`;
        let info;
        try {
          info = await stat(join(this.root, key));
        } catch (error) {
          if (errnoOf(error) === 'ENOENT') continue; // deleted while we listed
          throw ioError(`list ${key}`, error);
        }
        if (info.isDirectory()) stack.push(key);
        else if (info.isFile()) yield { key, sizeBytes: info.size, modifiedMs: info.mtimeMs };
      }
    }
  }

  async read(key: string, maxBytes: number): Promise<Uint8Array> {
    const path = this.path(key);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw ioError(`read ${key}`, error);
    }
    try {
      const { size } = await handle.stat();
      if (size > maxBytes) throw new BackupError(BackupErrorCode.tooLarge, `read ${key}: ${size} bytes is over the limit of ${maxBytes}`);
      const data = new Uint8Array(size);
      let at = 0;
      while (at < size) {
        const { bytesRead } = await handle.read(data, at, size - at, at);
        if (bytesRead === 0) throw new BackupError(BackupErrorCode.io, `read ${key}: the file shrank to ${at} bytes while it was read`);
        at += bytesRead;
      }
      return data;
    } catch (error) {
      if (error instanceof BackupError) throw error;
      throw ioError(`read ${key}`, error);
    } finally {
      await handle.close();
    }
  }

  async stat(key: string): Promise<BackupTargetEntry | undefined> {
    const path = this.path(key);
    try {
      const info = await stat(path);
      return info.isFile() ? { key, sizeBytes: info.size, modifiedMs: info.mtimeMs } : undefined;
    } catch (error) {
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return undefined;
      throw ioError(`stat ${key}`, error);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async write(key: string, data: Uint8Array): Promise<void> {
    const path = this.path(key);
    const dir = dirname(path);
    const temp = join(dir, `.${key.split('/').pop()!}.tmp-${randomBytes(6).toString('hex')}`);
    // A concurrent delete may prune the (empty) directory between mkdir and open: try again.
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true });
        const handle = await open(temp, 'wx', 0o644);
        try {
          await handle.writeFile(data);
          await handle.sync();
        } finally {
          await handle.close();
        }
        break;
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && attempt < 5) continue;
        await unlink(temp).catch((cleanup: unknown) => {
          if (errnoOf(cleanup) !== 'ENOENT') throw ioError(`write ${key}: removing ${temp}`, cleanup);
        });
        throw ioError(`write ${key}`, error);
      }
    }
    try {
      await rename(temp, path);
      const dirHandle = await open(dir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
    } catch (error) {
      await unlink(temp).catch((cleanup: unknown) => {
        if (errnoOf(cleanup) !== 'ENOENT') throw ioError(`write ${key}: removing ${temp}`, cleanup);
      });
      throw ioError(`write ${key}`, error);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const paths = keys.map((key) => this.path(key));
    for (const [i, path] of paths.entries()) {
      try {
        await unlink(path);
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT') throw ioError(`delete ${keys[i]!}`, error);
      }
      await this.pruneEmptyParents(dirname(path));
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    checkKey(prefix, { allowEmpty: true });
    const keys: string[] = [];
    for await (const entry of this.list(prefix)) keys.push(entry.key);
    await this.delete(keys);
    if (prefix !== '') await this.pruneEmptyParents(join(this.root, prefix));
    return keys.length;
  }

  /** Remove empty directories from `dir` up to the root, as Longhorn's drivers do. */
  private async pruneEmptyParents(dir: string): Promise<void> {
    for (let at = dir; at.startsWith(`${this.root}/`); at = dirname(at)) {
      try {
        await rmdir(at);
      } catch (error) {
        const code = errnoOf(error);
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') return;
        throw ioError(`delete: pruning ${at}`, error);
      }
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
