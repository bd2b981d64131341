// ReplicaFiles in memory, for tests and the simulator: it keeps what a disk would have durably
// (synced file contents, synced directory entries) apart from what is only in the "page cache",
// and can simulate a crash (power loss or kill -9 of the whole machine): every unsynced write and
// directory change is dropped, or, given a Random, a random subset of unsynced writes survives,
// some of them torn, and a random prefix of unsynced directory changes. It also injects EIO and
// ENOSPC, and can halt all I/O after N operations to crash at a seeded point.
import type { Random } from '../lib/random.ts';
import type { FileOpenMode, ReplicaFile, ReplicaFiles } from './replica-files.ts';

const pageSizeBytes = 4096;

export type FileOperation = 'open' | 'read' | 'write' | 'sync' | 'truncate' | 'rename' | 'remove' | 'syncDir' | 'list';

export interface InjectedFault {
  readonly op: FileOperation;
  /** Only paths containing this string (any path if absent). */
  readonly pathIncludes?: string;
  readonly errno: 'EIO' | 'ENOSPC';
  /** Matching calls to let through first. */
  readonly after?: number;
  /** How many matching calls fail (default 1). */
  readonly times?: number;
}

export interface CrashOptions {
  /** Without it every unsynced change is dropped; with it a random subset survives. */
  readonly random?: Random;
  /** Chance that each unsynced write survives (default 0.5). */
  readonly keepProbability?: number;
  /** Chance that a surviving write is torn to a prefix of whole tear units (default 0.3). */
  readonly tearProbability?: number;
  /** The disk's atomic write unit (default 512). */
  readonly tearUnitBytes?: number;
}

type UnsyncedChange = { kind: 'write'; positionBytes: number; data: Uint8Array } | { kind: 'truncate'; sizeBytes: number };

class Inode {
  pages = new Map<number, Uint8Array>();
  sizeBytes = 0;
  durablePages = new Map<number, Uint8Array>();
  durableSizeBytes = 0;
  dirtyPages = new Set<number>();
  log: UnsyncedChange[] = [];

  write(data: Uint8Array, positionBytes: number, logIt: boolean): void {
    let done = 0;
    while (done < data.length) {
      const at = positionBytes + done;
      const page = Math.floor(at / pageSizeBytes);
      const inPage = at - page * pageSizeBytes;
      const n = Math.min(pageSizeBytes - inPage, data.length - done);
      // Copy on write: a page object, once stored, is never mutated, so sync and crash can share it.
      const copy = new Uint8Array(pageSizeBytes);
      const old = this.pages.get(page);
      if (old !== undefined) copy.set(old);
      copy.set(data.subarray(done, done + n), inPage);
      this.pages.set(page, copy);
      this.dirtyPages.add(page);
      done += n;
    }
    this.sizeBytes = Math.max(this.sizeBytes, positionBytes + data.length);
    if (logIt) this.log.push({ kind: 'write', positionBytes, data: data.slice() });
  }

  truncate(sizeBytes: number, logIt: boolean): void {
    for (const page of [...this.pages.keys()]) {
      const start = page * pageSizeBytes;
      if (start >= sizeBytes) {
        this.pages.delete(page);
        this.dirtyPages.add(page);
      } else if (start + pageSizeBytes > sizeBytes) {
        const copy = this.pages.get(page)!.slice();
        copy.fill(0, sizeBytes - start);
        this.pages.set(page, copy);
        this.dirtyPages.add(page);
      }
    }
    this.sizeBytes = sizeBytes;
    if (logIt) this.log.push({ kind: 'truncate', sizeBytes });
  }

  read(target: Uint8Array, positionBytes: number): number {
    const n = Math.max(0, Math.min(target.length, this.sizeBytes - positionBytes));
    let done = 0;
    while (done < n) {
      const at = positionBytes + done;
      const page = Math.floor(at / pageSizeBytes);
      const inPage = at - page * pageSizeBytes;
      const k = Math.min(pageSizeBytes - inPage, n - done);
      const data = this.pages.get(page);
      if (data === undefined) target.fill(0, done, done + k);
      else target.set(data.subarray(inPage, inPage + k), done);
      done += k;
    }
    return n;
  }

  sync(): void {
    for (const page of this.dirtyPages) {
      const data = this.pages.get(page);
      if (data === undefined) this.durablePages.delete(page);
      else this.durablePages.set(page, data);
    }
    this.durableSizeBytes = this.sizeBytes;
    this.dirtyPages.clear();
    this.log = [];
  }

  crash(options: CrashOptions): void {
    const log = this.log;
    this.pages = new Map(this.durablePages);
    this.sizeBytes = this.durableSizeBytes;
    this.dirtyPages.clear();
    this.log = [];
    const random = options.random;
    if (random !== undefined) {
      const keep = options.keepProbability ?? 0.5;
      const tear = options.tearProbability ?? 0.3;
      const unit = options.tearUnitBytes ?? 512;
      for (const change of log) {
        if (random.next() >= keep) continue;
        if (change.kind === 'truncate') {
          this.truncate(change.sizeBytes, false);
          continue;
        }
        let data = change.data;
        if (random.next() < tear) data = data.subarray(0, unit * random.int(Math.ceil(data.length / unit)));
        if (data.length > 0) this.write(data, change.positionBytes, false);
      }
    }
    this.sync();
  }
}

type DirectoryChange =
  | { kind: 'link'; dir: string; path: string; inode: Inode }
  | { kind: 'unlink'; dir: string; path: string };

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function errnoError(errno: string, message: string): Error {
  return Object.assign(new Error(`${errno}: ${message}`), { code: errno });
}

export class MemoryReplicaFiles implements ReplicaFiles {
  private names = new Map<string, Inode>();
  private durableNames = new Map<string, Inode>();
  private dirLog: DirectoryChange[] = [];
  private readonly dirs = new Set<string>(['/']);
  private faults: { fault: InjectedFault; skip: number; left: number }[] = [];
  private generation = 0;
  private opsUntilHalt = Infinity;
  /** Operations performed so far (to pick seeded halt points). */
  operationCount = 0;

  injectFault(fault: InjectedFault): void {
    this.faults.push({ fault, skip: fault.after ?? 0, left: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** After `operations` more calls, every call fails with EIO, as if the machine had died. */
  haltAfter(operations: number): void {
    this.opsUntilHalt = operations;
  }

  /** Lose power: keep only what was synced (see CrashOptions); handles opened before stop working. */
  crash(options: CrashOptions = {}): void {
    const random = options.random;
    let kept = 0;
    if (random !== undefined) kept = random.int(this.dirLog.length + 1);
    const names = new Map(this.durableNames);
    for (const change of this.dirLog.slice(0, kept)) applyDirectoryChange(names, change);
    const inodes = new Set([...this.names.values(), ...names.values()]);
    for (const inode of inodes) inode.crash(options);
    this.names = names;
    this.durableNames = new Map(names);
    this.dirLog = [];
    this.generation++;
    this.opsUntilHalt = Infinity;
    this.faults = [];
  }

  /** Bytes of a file as it reads now (for tests that corrupt files). */
  peek(path: string): Uint8Array | undefined {
    const inode = this.names.get(path);
    if (inode === undefined) return undefined;
    const out = new Uint8Array(inode.sizeBytes);
    inode.read(out, 0);
    return out;
  }

  /** Replace a file's contents, durably (for tests that plant hostile files). */
  plant(path: string, data: Uint8Array): void {
    let inode = this.names.get(path);
    if (inode === undefined) {
      inode = new Inode();
      this.names.set(path, inode);
      this.durableNames.set(path, inode);
    }
    inode.truncate(0, false);
    inode.write(data, 0, false);
    inode.sync();
  }

  open(path: string, mode: FileOpenMode): Promise<ReplicaFile> {
    return this.run('open', path, () => {
      let inode = this.names.get(path);
      if (inode === undefined) {
        if (mode !== 'create') throw errnoError('ENOENT', `no such file: ${path}`);
        if (!this.dirs.has(dirOf(path))) throw errnoError('ENOENT', `no such directory: ${dirOf(path)}`);
        inode = new Inode();
        this.link(path, inode);
      } else if (mode === 'create') {
        inode.truncate(0, true);
      }
      return new MemoryFile(this, inode, path, this.generation);
    });
  }

  list(dir: string): Promise<string[]> {
    return this.run('list', dir, () => {
      if (!this.dirs.has(dir)) throw errnoError('ENOENT', `no such directory: ${dir}`);
      const prefix = dir.endsWith('/') ? dir : `${dir}/`;
      return [...this.names.keys()].filter((p) => dirOf(p) === dir).map((p) => p.slice(prefix.length)).sort();
    });
  }

  mkdir(dir: string): Promise<void> {
    // Directories themselves are durable at once: the store never relies on a fresh directory
    // surviving a crash before its first syncDir of the parent (it syncs the metadata inside).
    let d = dir;
    while (d !== '/' && d !== '') {
      this.dirs.add(d);
      d = dirOf(d);
    }
    return Promise.resolve();
  }

  rename(from: string, to: string): Promise<void> {
    return this.run('rename', from, () => {
      const inode = this.names.get(from);
      if (inode === undefined) throw errnoError('ENOENT', `no such file: ${from}`);
      this.unlink(from);
      this.link(to, inode);
    });
  }

  remove(path: string): Promise<void> {
    return this.run('remove', path, () => {
      if (this.names.has(path)) this.unlink(path);
    });
  }

  syncDir(dir: string): Promise<void> {
    return this.run('syncDir', dir, () => {
      const rest: DirectoryChange[] = [];
      for (const change of this.dirLog) {
        if (change.dir === dir) applyDirectoryChange(this.durableNames, change);
        else rest.push(change);
      }
      this.dirLog = rest;
    });
  }

  /** Run one operation through the fault and halt checks. */
  run<T>(op: FileOperation, path: string, body: () => T, generation?: number): Promise<T> {
    try {
      this.operationCount++;
      if (generation !== undefined && generation !== this.generation) {
        throw errnoError('EIO', `${op} ${path}: file handle from before a simulated crash`);
      }
      if (this.opsUntilHalt <= 0) throw errnoError('EIO', `${op} ${path}: simulated machine halted`);
      this.opsUntilHalt--;
      for (const entry of this.faults) {
        const { fault } = entry;
        if (fault.op !== op || entry.left <= 0) continue;
        if (fault.pathIncludes !== undefined && !path.includes(fault.pathIncludes)) continue;
        if (entry.skip > 0) {
          entry.skip--;
          continue;
        }
        entry.left--;
        throw errnoError(fault.errno, `${op} ${path}: injected fault`);
      }
      return Promise.resolve(body());
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private link(path: string, inode: Inode): void {
    this.names.set(path, inode);
    this.dirLog.push({ kind: 'link', dir: dirOf(path), path, inode });
  }

  private unlink(path: string): void {
    this.names.delete(path);
    this.dirLog.push({ kind: 'unlink', dir: dirOf(path), path });
  }
}

function applyDirectoryChange(names: Map<string, Inode>, change: DirectoryChange): void {
  if (change.kind === 'link') names.set(change.path, change.inode);
  else names.delete(change.path);
}

class MemoryFile implements ReplicaFile {
  private readonly files: MemoryReplicaFiles;
  private readonly inode: Inode;
  private readonly path: string;
  private readonly generation: number;
  private closed = false;

  constructor(files: MemoryReplicaFiles, inode: Inode, path: string, generation: number) {
    this.files = files;
    this.inode = inode;
    this.path = path;
    this.generation = generation;
  }

  read(target: Uint8Array, positionBytes: number): Promise<number> {
    return this.op('read', () => this.inode.read(target, positionBytes));
  }

  write(data: Uint8Array, positionBytes: number): Promise<void> {
    return this.op('write', () => this.inode.write(data, positionBytes, true));
  }

  sync(): Promise<void> {
    return this.op('sync', () => this.inode.sync());
  }

  truncate(sizeBytes: number): Promise<void> {
    return this.op('truncate', () => this.inode.truncate(sizeBytes, true));
  }

  sizeBytes(): Promise<number> {
    return this.op('read', () => this.inode.sizeBytes);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private op<T>(op: FileOperation, body: () => T): Promise<T> {
    if (this.closed) return Promise.reject(errnoError('EBADF', `${op} ${this.path}: file is closed`));
    return this.files.run(op, this.path, body, this.generation);
  }
}
