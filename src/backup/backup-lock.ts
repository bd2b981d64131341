// Longhorn's lock on a backup volume, kept compatible so Shorthorn and Longhorn can share a
// target: write our lock file unacquired, wait for clocks and mtimes to settle, list the locks,
// and go ahead only if no unexpired lock of the other type ranks ahead of ours; then mark ours
// acquired and rewrite it every refresh interval until release. Backups and restores (type 1)
// run together; a deletion (type 2) runs alone.
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { generatedName } from '../format/backup/backup-names.ts';
import type { BackupVolumePaths } from '../format/backup/backup-paths.ts';
import { blockingLock, decodeLockFile, encodeLockFile, lockRefreshIntervalMs, lockSettleMs, type LockType, type ServerLock } from '../format/backup/lock-file.ts';
import { backupLockSizeMaxBytes } from '../lib/limits.ts';
import type { BackupStore } from './backup-store.ts';

export interface LockOptions {
  /** Wait after writing our lock before looking at the others (Longhorn: 2 s). */
  readonly settleMs?: number;
  /** Keep trying for this long while another operation holds a conflicting lock (default 10
   *  minutes; 0 fails at once, as Longhorn does, leaving retries to its caller). */
  readonly waitMs?: number;
  readonly refreshIntervalMs?: number;
}

export const defaultLockWaitMs = 10 * 60_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class BackupLock {
  readonly name: string;
  private readonly store: BackupStore;
  private readonly paths: BackupVolumePaths;
  private readonly type: LockType;
  private timer: ReturnType<typeof setInterval> | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  /** The last refresh failure, if any: the holder may have lost the lock. */
  refreshError: BackupError | undefined;

  private constructor(store: BackupStore, paths: BackupVolumePaths, type: LockType) {
    this.store = store;
    this.paths = paths;
    this.type = type;
    this.name = generatedName('lock', store.randomBytes(8));
  }

  static async acquire(store: BackupStore, paths: BackupVolumePaths, type: LockType, options: LockOptions = {}): Promise<BackupLock> {
    const deadline = store.clock.monotonicMs() + (options.waitMs ?? defaultLockWaitMs);
    for (let backoffMs = 200; ; backoffMs = Math.min(backoffMs * 2, 5000)) {
      const lock = new BackupLock(store, paths, type);
      const blocker = await lock.tryAcquire(options);
      if (blocker === undefined) return lock;
      if (store.clock.monotonicMs() + backoffMs > deadline) {
        throw new BackupError(
          BackupErrorCode.locked,
          `Backup volume ${paths.volumeName} is locked by ${blocker.name} (type ${blocker.type}, ${blocker.acquired ? 'acquired' : 'waiting'}); a ${type === 2 ? 'deletion' : 'backup or restore'} cannot start now`,
        );
      }
      await sleep(backoffMs); // back-off before trying again, bounded by the deadline above
    }
  }

  private async tryAcquire(options: LockOptions): Promise<ServerLock | undefined> {
    const key = this.paths.lock(this.name);
    await this.store.target.write(key, encodeLockFile({ name: this.name, type: this.type, acquired: false }));
    try {
      await sleep(options.settleMs ?? lockSettleMs); // Longhorn's settle time: skew and 1 s mtimes
      const locks = await this.serverLocks();
      const own = locks.find((l) => l.name === this.name);
      if (own === undefined) throw new BackupError(BackupErrorCode.io, `lock ${key} vanished right after it was written`);
      const blocker = blockingLock(own, locks, this.store.clock.nowMs());
      if (blocker !== undefined) {
        await this.store.target.delete([key]);
        return blocker;
      }
      await this.store.target.write(key, encodeLockFile({ name: this.name, type: this.type, acquired: true }));
    } catch (error) {
      await this.store.target.delete([key]);
      throw error;
    }
    const interval = options.refreshIntervalMs ?? lockRefreshIntervalMs;
    this.timer = setInterval(() => {
      this.refreshing = this.store.target.write(key, encodeLockFile({ name: this.name, type: this.type, acquired: true })).then(
        () => {
          this.refreshError = undefined;
        },
        (error: unknown) => {
          // Kept for the holder to see: a lock not refreshed for 150 s expires for others.
          this.refreshError = error instanceof BackupError ? error : new BackupError(BackupErrorCode.io, String(error), { cause: error });
        },
      );
    }, interval);
    this.timer.unref();
    return undefined;
  }

  private async serverLocks(): Promise<ServerLock[]> {
    const out: ServerLock[] = [];
    for await (const entry of this.store.target.list(this.paths.locksDir)) {
      const name = this.paths.lockNameOf(entry.key);
      if (name === undefined) continue;
      let bytes: Uint8Array;
      try {
        bytes = await this.store.target.read(entry.key, backupLockSizeMaxBytes);
      } catch (error) {
        if (error instanceof BackupError && error.code === BackupErrorCode.notFound) continue; // released meanwhile
        throw error;
      }
      try {
        out.push({ ...decodeLockFile(bytes, entry.key), serverTimeMs: entry.modifiedMs });
      } catch (error) {
        // Longhorn skips lock files it cannot load; an unreadable lock blocks no one.
        if (!(error instanceof BackupError)) throw error;
      }
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
    await this.store.target.delete([this.paths.lock(this.name)]);
  }
}
