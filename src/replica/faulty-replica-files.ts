// A fault-injecting ReplicaFiles for tests with real replica processes (reliability notes §7.2,
// the Mayastor `inject://` idea): it wraps the real files and, as its FaultConfig says, fails
// chosen operations with EIO or ENOSPC, delays them, tears a write and crashes, corrupts what a
// read returns, kills the process at a named fault point, and — with loseUnsynced — keeps every
// write in memory until the file's sync(), so that a kill -9 loses unsynced writes as a power loss
// would. The store is unchanged; only the daemon's wiring (bin/replica-command.ts) puts this in.
//
// loseUnsynced model: the unsynced writes of a path are held in one overlay shared by every
// handle to that path (reads see them, in order); sync() writes them to the file, then
// fdatasyncs. A sync that fails with an injected EIO discards them (Linux marks dirty pages clean
// after a failed writeback: fsyncgate), so a retried sync "succeeds" with the data gone, as on a
// real disk. Size changes (truncate) and directory operations are applied at once: only file data
// is held back. Past limits.faultUnsyncedBytesMax the overlay is written out (still unsynced on
// the real disk, so a process crash no longer loses it): keep fault workloads small.
import { setTimeout as sleep } from 'node:timers/promises';
import { faultUnsyncedBytesMax, sectorSizeBytes } from '../lib/limits.ts';
import { SeededRandom } from '../lib/random.ts';
import { ruleMatches, type FaultConfig, type FaultOp, type FaultRule } from './fault-config.ts';
import type { FileOpenMode, ReplicaFile, ReplicaFiles } from './replica-files.ts';

export interface FaultyReplicaFilesOptions {
  readonly inner: ReplicaFiles;
  readonly config: FaultConfig;
  /** Kill this process at once (production: SIGKILL to itself). Must not return normally in real use. */
  readonly crash: (why: string) => void;
  readonly log: (message: string) => void;
}

/** Decides, from the seed, which operations a rule fires on. */
class FaultDecider {
  private readonly random: SeededRandom;
  private readonly rules: readonly FaultRule[];
  private readonly matched: number[];
  private readonly fired: number[];

  constructor(config: FaultConfig) {
    this.random = new SeededRandom(config.seed);
    this.rules = config.rules;
    this.matched = config.rules.map(() => 0);
    this.fired = config.rules.map(() => 0);
  }

  /** The rules that fire on this operation, in config order. */
  decide(args: { op: FaultOp; path: string; offsetBytes?: number; lengthBytes?: number }): FaultRule[] {
    const firing: FaultRule[] = [];
    this.rules.forEach((rule, i) => {
      if (!ruleMatches(rule, args)) return;
      this.matched[i]!++;
      if (this.matched[i]! <= rule.after || this.fired[i]! >= rule.count) return;
      if (rule.probability < 1 && this.random.next() >= rule.probability) return;
      this.fired[i]!++;
      firing.push(rule);
    });
    return firing;
  }

  int(maxExclusive: number): number {
    return this.random.int(maxExclusive);
  }

  next(): number {
    return this.random.next();
  }
}

function injectedError(code: 'EIO' | 'ENOSPC', op: FaultOp, path: string): Error {
  const text = code === 'EIO' ? 'i/o error' : 'no space left on device';
  return Object.assign(new Error(`${code}: ${text} (injected), ${op} '${path}'`), { code, errno: code === 'EIO' ? -5 : -28, syscall: op, path });
}

/** Unsynced writes of one path, oldest first. */
class Overlay {
  writes: { offsetBytes: number; data: Uint8Array }[] = [];
  bytes = 0;
  /** The file's size as this process sees it (the real file may be shorter until sync). */
  sizeBytes: number;

  constructor(sizeBytes: number) {
    this.sizeBytes = sizeBytes;
  }

  add(offsetBytes: number, data: Uint8Array): void {
    this.writes.push({ offsetBytes, data: data.slice() });
    this.bytes += data.length;
    this.sizeBytes = Math.max(this.sizeBytes, offsetBytes + data.length);
  }

  /**
   * Lay the unsynced writes over what the file returned for [positionBytes, +target.length).
   * `writes` is the list as it was when the file read began: a sync may have written some of
   * them out meanwhile, after the file read had passed them (S17 seed 1 read zeros so).
   */
  apply(target: Uint8Array, positionBytes: number, fromDisk: number, writes: readonly { offsetBytes: number; data: Uint8Array }[] = this.writes): number {
    const visible = Math.max(0, Math.min(target.length, this.sizeBytes - positionBytes));
    if (fromDisk < visible) target.fill(0, fromDisk, visible);
    const end = positionBytes + visible;
    for (const w of writes) {
      const from = Math.max(w.offsetBytes, positionBytes);
      const to = Math.min(w.offsetBytes + w.data.length, end);
      if (from < to) target.set(w.data.subarray(from - w.offsetBytes, to - w.offsetBytes), from - positionBytes);
    }
    return visible;
  }

  clip(sizeBytes: number): void {
    this.sizeBytes = sizeBytes;
    this.writes = this.writes
      .filter((w) => w.offsetBytes < sizeBytes)
      .map((w) => (w.offsetBytes + w.data.length <= sizeBytes ? w : { offsetBytes: w.offsetBytes, data: w.data.subarray(0, sizeBytes - w.offsetBytes) }));
    this.bytes = this.writes.reduce((n, w) => n + w.data.length, 0);
  }

  /** One write has reached the file: it no longer needs to be laid over reads. */
  written(write: { offsetBytes: number; data: Uint8Array }): void {
    const i = this.writes.indexOf(write);
    if (i < 0) return;
    this.writes.splice(i, 1);
    this.bytes -= write.data.length;
  }

  take(): { offsetBytes: number; data: Uint8Array }[] {
    const writes = this.writes;
    this.writes = [];
    this.bytes = 0;
    return writes;
  }
}

class FaultyReplicaFile implements ReplicaFile {
  private readonly owner: FaultyReplicaFiles;
  private readonly path: string;
  private readonly inner: ReplicaFile;
  /** The path's unsynced writes (shared by its handles), when loseUnsynced is on. */
  private readonly overlay: Overlay | undefined;

  constructor(owner: FaultyReplicaFiles, path: string, inner: ReplicaFile, overlay: Overlay | undefined) {
    this.owner = owner;
    this.path = path;
    this.inner = inner;
    this.overlay = overlay;
  }

  async read(target: Uint8Array, positionBytes: number): Promise<number> {
    const rules = await this.owner.enter({ op: 'read', path: this.path, offsetBytes: positionBytes, lengthBytes: target.length });
    const overlay = this.overlay;
    const pending = overlay?.writes.slice();
    let count = await this.inner.read(target, positionBytes);
    if (overlay !== undefined) count = overlay.apply(target, positionBytes, count, pending);
    for (const rule of rules) if (rule.type === 'corrupt') this.owner.corrupt(target.subarray(0, count), positionBytes, rule);
    return count;
  }

  async write(data: Uint8Array, positionBytes: number): Promise<void> {
    const rules = await this.owner.enter({ op: 'write', path: this.path, offsetBytes: positionBytes, lengthBytes: data.length });
    const torn = rules.find((r) => r.type === 'torn');
    if (torn !== undefined) {
      // The prefix reaches the file itself (not the overlay): it is what a crash mid-write leaves.
      const sectors = Math.floor(Math.min(torn.tornBytes, data.length - 1) / sectorSizeBytes);
      if (sectors > 0) await this.inner.write(data.subarray(0, sectors * sectorSizeBytes), positionBytes);
      this.owner.crashNow(`torn write of ${data.length} bytes at ${positionBytes} in ${this.path}: ${sectors * sectorSizeBytes} bytes written`);
      return new Promise<void>(() => {});
    }
    const overlay = this.overlay;
    if (overlay === undefined) return this.inner.write(data, positionBytes);
    overlay.add(positionBytes, data);
    if (overlay.bytes > faultUnsyncedBytesMax) await this.writeOut(overlay);
  }

  async sync(): Promise<void> {
    const overlay = this.overlay;
    try {
      await this.owner.enter({ op: 'sync', path: this.path });
    } catch (error) {
      // fsyncgate: a failed writeback leaves the pages clean; the data is gone.
      if (overlay !== undefined) {
        const lost = overlay.take();
        this.owner.log(`fault: sync of ${this.path} failed; ${lost.length} unsynced writes dropped`);
      }
      throw error;
    }
    if (overlay !== undefined) await this.writeOut(overlay);
    await this.inner.sync();
  }

  async truncate(sizeBytes: number): Promise<void> {
    await this.owner.enter({ op: 'truncate', path: this.path });
    await this.inner.truncate(sizeBytes);
    this.overlay?.clip(sizeBytes);
  }

  async sizeBytes(): Promise<number> {
    const real = await this.inner.sizeBytes();
    return this.overlay === undefined ? real : Math.max(real, this.overlay.sizeBytes);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async writeOut(overlay: Overlay): Promise<void> {
    // Each write stays visible to reads until it is in the file: taking them all first let a read
    // that ran during the write-out see neither the overlay nor the file (stale data).
    for (const w of overlay.writes.slice()) {
      await this.inner.write(w.data, w.offsetBytes);
      overlay.written(w);
    }
  }
}

export class FaultyReplicaFiles implements ReplicaFiles {
  private readonly inner: ReplicaFiles;
  private readonly config: FaultConfig;
  private readonly decider: FaultDecider;
  private readonly crash: (why: string) => void;
  readonly log: (message: string) => void;
  private readonly overlays = new Map<string, Overlay>();
  /** Faults fired so far, by type (for logs and tests). */
  readonly firedCounts = new Map<string, number>();

  constructor(options: FaultyReplicaFilesOptions) {
    this.inner = options.inner;
    this.config = options.config;
    this.decider = new FaultDecider(options.config);
    this.crash = options.crash;
    this.log = options.log;
  }

  /** The fault-point hook for the store: a configured point kills the process. */
  readonly faultPoint = (name: string): void => {
    if (this.config.crashAtPoints.includes(name)) this.crashNow(`fault point ${name}`);
  };

  crashNow(why: string): void {
    this.log(`fault: crash (${why})`);
    this.crash(why);
  }

  /** Apply the rules that fire on an operation: wait, fail or crash; returns those left to the caller (torn, corrupt). */
  async enter(args: { op: FaultOp; path: string; offsetBytes?: number; lengthBytes?: number }): Promise<FaultRule[]> {
    const rules = this.decider.decide(args);
    for (const rule of rules) {
      this.firedCounts.set(rule.type, (this.firedCounts.get(rule.type) ?? 0) + 1);
      const where = `${args.op} ${args.path}${args.offsetBytes === undefined ? '' : ` at ${args.offsetBytes}+${args.lengthBytes ?? 0}`}`;
      switch (rule.type) {
        case 'latency':
          await sleep(Math.max(0, rule.delayMs + (this.decider.next() * 2 - 1) * rule.jitterMs));
          break;
        case 'eio':
        case 'enospc':
          this.log(`fault: ${rule.type} on ${where}`);
          throw injectedError(rule.type === 'eio' ? 'EIO' : 'ENOSPC', args.op, args.path);
        case 'crash':
          this.crashNow(`before ${where}`);
          await new Promise<never>(() => {});
          break;
        case 'torn':
        case 'corrupt':
          this.log(`fault: ${rule.type} on ${where}`);
          break;
      }
    }
    return rules;
  }

  /** Flip one seeded byte in every sector of `data` that the rule's range covers. */
  corrupt(data: Uint8Array, positionBytes: number, rule: FaultRule): void {
    const from = Math.max(rule.offsetBytes, positionBytes) - positionBytes;
    const to = Math.min(rule.offsetBytes + rule.lengthBytes, positionBytes + data.length) - positionBytes;
    for (let at = from; at < to; at += sectorSizeBytes) {
      const i = at + this.decider.int(Math.min(sectorSizeBytes, to - at));
      data[i] = data[i]! ^ (1 + this.decider.int(255));
    }
  }

  async open(path: string, mode: FileOpenMode): Promise<ReplicaFile> {
    await this.enter({ op: 'open', path });
    const file = await this.inner.open(path, mode);
    let overlay: Overlay | undefined;
    if (this.config.loseUnsynced) {
      overlay = mode === 'create' ? undefined : this.overlays.get(path);
      if (overlay === undefined) {
        overlay = new Overlay(mode === 'create' ? 0 : await file.sizeBytes());
        this.overlays.set(path, overlay);
      }
    }
    return new FaultyReplicaFile(this, path, file, overlay);
  }

  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }

  mkdir(dir: string): Promise<void> {
    return this.inner.mkdir(dir);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.enter({ op: 'rename', path: from });
    await this.inner.rename(from, to);
    const overlay = this.overlays.get(from);
    this.overlays.delete(from);
    if (overlay !== undefined) this.overlays.set(to, overlay);
    else this.overlays.delete(to);
  }

  async remove(path: string): Promise<void> {
    await this.enter({ op: 'remove', path });
    await this.inner.remove(path);
    this.overlays.delete(path);
  }

  async syncDir(dir: string): Promise<void> {
    await this.enter({ op: 'syncDir', path: dir });
    await this.inner.syncDir(dir);
  }
}
