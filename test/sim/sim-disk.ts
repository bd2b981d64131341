// One replica machine's disk in the simulator: the replica store's ReplicaFiles port over
// MemoryReplicaFiles (which keeps durable bytes apart from the page cache), with every operation
// completing after a seeded latency, so concurrent disk I/O completes in a seeded order. An
// operation takes effect when it completes. Faults: EIO and ENOSPC by seeded chance, a killed
// process (its pending operations never complete, the page cache survives), and power loss
// (unsynced writes and directory changes lost, a random subset kept, some torn at 512 bytes).
import { MemoryReplicaFiles, type FileOperation } from '../../src/replica/memory-replica-files.ts';
import type { FileOpenMode, ReplicaFile, ReplicaFiles } from '../../src/replica/replica-files.ts';
import type { SimScheduler } from './sim-scheduler.ts';

export interface DiskFaultRates {
  /** Chance that one read, write, sync or metadata operation fails with EIO. */
  readonly eio: number;
  /** Chance that one write fails with ENOSPC. */
  readonly enospc: number;
  /** Chance that one operation is slow (10–50 ms instead of well under one). */
  readonly slow: number;
}

export const noDiskFaults: DiskFaultRates = { eio: 0, enospc: 0, slow: 0 };

function errnoError(errno: string, message: string): Error {
  return Object.assign(new Error(`${errno}: ${message}`), { code: errno });
}

export class SimDisk {
  readonly memory = new MemoryReplicaFiles();
  private readonly sim: SimScheduler;
  readonly name: string;
  private incarnation = 0;
  faults: DiskFaultRates = noDiskFaults;
  /** Faults injected so far (for the run's statistics). */
  injected = 0;

  constructor(sim: SimScheduler, name: string) {
    this.sim = sim;
    this.name = name;
  }

  /** The file port of the process running now; it stops working when that process dies. */
  view(): ReplicaFiles {
    return new SimDiskView(this, this.incarnation);
  }

  /** kill -9 of the replica process: what it asked for and did not get never happens; the page cache survives. */
  killProcess(): void {
    this.incarnation++;
  }

  /** The machine loses power: kill the process, then lose what was not synced (some writes kept, some torn). */
  powerLoss(): void {
    this.incarnation++;
    this.memory.crash({ random: this.sim.random, keepProbability: 0.5, tearProbability: 0.3, tearUnitBytes: 512 });
  }

  /**
   * Run `body` against the memory files after a seeded latency, unless a fault is drawn. A call
   * from a process that has died since never completes: nobody is left to see it.
   */
  io<T>(incarnation: number, op: FileOperation, path: string, body: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (incarnation !== this.incarnation) return;
      const random = this.sim.random;
      const base = op === 'sync' || op === 'syncDir' ? 0.5 + random.next() * 2.5 : 0.02 + random.next() * 0.4;
      const latencyMs = this.faults.slow > 0 && random.next() < this.faults.slow ? 10 + random.next() * 40 : base;
      const fault = this.drawFault(op);
      this.sim.schedule(latencyMs, `${this.name} ${op}`, () => {
        if (incarnation !== this.incarnation) return;
        if (fault !== null) {
          this.injected++;
          this.sim.trace(`${this.name} disk ${op} ${path}: injected ${fault}`);
          reject(errnoError(fault, `${op} ${path}: injected by the simulator`));
          return;
        }
        body().then(resolve, reject);
      });
    });
  }

  private drawFault(op: FileOperation): 'EIO' | 'ENOSPC' | null {
    const { eio, enospc } = this.faults;
    if (eio === 0 && enospc === 0) return null;
    const random = this.sim.random;
    if (op === 'write' && random.next() < enospc) return 'ENOSPC';
    // Listing and opening happen at start-up; failing them only stops a restart, which the
    // simulator retries, so faults go where they test the store's ordering: data and metadata I/O.
    if (op === 'list' || op === 'open') return null;
    return random.next() < eio ? 'EIO' : null;
  }
}

class SimDiskView implements ReplicaFiles {
  private readonly disk: SimDisk;
  private readonly incarnation: number;

  constructor(disk: SimDisk, incarnation: number) {
    this.disk = disk;
    this.incarnation = incarnation;
  }

  open(path: string, mode: FileOpenMode): Promise<ReplicaFile> {
    return this.disk.io(this.incarnation, 'open', path, async () => new SimFile(this.disk, this.incarnation, await this.disk.memory.open(path, mode), path));
  }

  list(dir: string): Promise<string[]> {
    return this.disk.io(this.incarnation, 'list', dir, () => this.disk.memory.list(dir));
  }

  mkdir(dir: string): Promise<void> {
    return this.disk.io(this.incarnation, 'list', dir, () => this.disk.memory.mkdir(dir));
  }

  rename(from: string, to: string): Promise<void> {
    return this.disk.io(this.incarnation, 'rename', from, () => this.disk.memory.rename(from, to));
  }

  remove(path: string): Promise<void> {
    return this.disk.io(this.incarnation, 'remove', path, () => this.disk.memory.remove(path));
  }

  syncDir(dir: string): Promise<void> {
    return this.disk.io(this.incarnation, 'syncDir', dir, () => this.disk.memory.syncDir(dir));
  }
}

class SimFile implements ReplicaFile {
  private readonly disk: SimDisk;
  private readonly incarnation: number;
  private readonly file: ReplicaFile;
  private readonly path: string;

  constructor(disk: SimDisk, incarnation: number, file: ReplicaFile, path: string) {
    this.disk = disk;
    this.incarnation = incarnation;
    this.file = file;
    this.path = path;
  }

  read(target: Uint8Array, positionBytes: number): Promise<number> {
    return this.disk.io(this.incarnation, 'read', this.path, () => this.file.read(target, positionBytes));
  }

  write(data: Uint8Array, positionBytes: number): Promise<void> {
    // The caller may reuse its buffer once the call returns a promise: copy, as the kernel does.
    const copy = data.slice();
    return this.disk.io(this.incarnation, 'write', this.path, () => this.file.write(copy, positionBytes));
  }

  sync(): Promise<void> {
    return this.disk.io(this.incarnation, 'sync', this.path, () => this.file.sync());
  }

  truncate(sizeBytes: number): Promise<void> {
    return this.disk.io(this.incarnation, 'truncate', this.path, () => this.file.truncate(sizeBytes));
  }

  sizeBytes(): Promise<number> {
    return this.disk.io(this.incarnation, 'read', this.path, () => this.file.sizeBytes());
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
