// Deleting a backup, then mark-and-sweep garbage collection of blocks, under Longhorn's deletion
// lock (which no backup or restore holds at the same time). A block is deleted only if no backup
// config references it, every config loaded, no backup is in progress, the list of backups did
// not change during the scan, and the block is older than a grace period (so even a client that
// ignores locks cannot lose a block it has just uploaded).
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { isInProgress } from '../format/backup/backup-config.ts';
import { checkBackupStoreName } from '../format/backup/backup-names.ts';
import type { BackupVolumePaths } from '../format/backup/backup-paths.ts';
import { parseGoTime } from '../format/backup/go-json.ts';
import { LockType } from '../format/backup/lock-file.ts';
import { BackupLock, type LockOptions } from './backup-lock.ts';
import type { BackupStore } from './backup-store.ts';

export interface DeleteBackupOptions {
  readonly volumeName: string;
  readonly backupName: string;
  /** Blocks modified more recently than this are kept (default 10 minutes). */
  readonly gcGraceMs?: number;
  /** An in-progress config older than this counts as abandoned, not as a live backup (default 24 h). */
  readonly inProgressStaleMs?: number;
  /** By default, wait up to 10 minutes for running backups and restores to finish. */
  readonly lock?: LockOptions;
}

export interface GcResult {
  readonly blocksDeleted: number;
  readonly blocksKept: number;
  /** Why no block was deleted, when collection was skipped. */
  readonly skipped?: string;
}

/** Mark and sweep the blocks of one volume; the caller holds the deletion lock. */
export async function collectGarbage(
  store: BackupStore,
  paths: BackupVolumePaths,
  options: { gcGraceMs?: number; inProgressStaleMs?: number; lastBackupWasDeleted: boolean },
): Promise<GcResult> {
  const nowMs = store.clock.nowMs();
  const blocks = await store.listBlocks(paths);
  const before = await store.backupEntries(paths);
  const referenced = new Set<string>();
  let skipped: string | undefined;
  let newest: { name: string; at: number; text: string } | undefined;
  // One config at a time, so memory follows the largest backup, not their sum (LH #2339).
  for (const [name, entry] of before) {
    let backup;
    try {
      backup = await store.loadBackup(paths, name);
    } catch (error) {
      if (!(error instanceof BackupError)) throw error;
      skipped ??= `backup ${name} could not be loaded (${error.message})`;
      continue;
    }
    if (isInProgress(backup)) {
      if (nowMs - entry.modifiedMs < (options.inProgressStaleMs ?? 24 * 3600_000)) skipped ??= `backup ${name} is in progress`;
      continue;
    }
    for (const block of backup.blocks) referenced.add(block.checksum);
    const at = parseGoTime(backup.snapshotCreatedAt) ?? 0;
    if (newest === undefined || at > newest.at || (at === newest.at && name > newest.name)) newest = { name, at, text: backup.snapshotCreatedAt };
  }
  const after = await store.backupEntries(paths);
  if (after.size !== before.size || [...after.keys()].some((name) => !before.has(name))) skipped ??= 'backups were created or deleted during the scan';
  const volume = await store.loadVolumeConfig(paths);
  const grace = options.gcGraceMs ?? 10 * 60_000;
  const doomed: string[] = [];
  let kept = 0;
  for (const [checksum, entry] of blocks) {
    if (referenced.has(checksum)) kept++;
    else if (skipped === undefined && nowMs - entry.modifiedMs >= grace) doomed.push(paths.block(checksum));
  }
  if (doomed.length > 0) await store.target.delete(doomed);
  const lastBackup = options.lastBackupWasDeleted && skipped === undefined ? newest : undefined;
  await store.saveVolumeConfig(paths, {
    ...volume,
    ...(skipped === undefined ? { blockCount: kept } : {}),
    ...(options.lastBackupWasDeleted ? { lastBackupName: lastBackup?.name ?? '', lastBackupAt: lastBackup?.text ?? '' } : {}),
  });
  return { blocksDeleted: doomed.length, blocksKept: kept, ...(skipped === undefined ? {} : { skipped }) };
}

export async function deleteBackup(store: BackupStore, options: DeleteBackupOptions): Promise<GcResult> {
  checkBackupStoreName(options.volumeName, 'volume name');
  checkBackupStoreName(options.backupName, 'backup name');
  const paths = await store.paths(options.volumeName);
  const lock = await BackupLock.acquire(store, paths, LockType.deletion, options.lock);
  try {
    const volume = await store.loadVolumeConfig(paths);
    const key = paths.backupConfig(options.backupName);
    if (!(await store.target.exists(key))) {
      throw new BackupError(BackupErrorCode.notFound, `Backup ${options.backupName} of volume ${options.volumeName} is not on ${store.target.url}`);
    }
    // The config goes first, whether or not it parses (Longhorn does the same).
    await store.target.delete([key]);
    const lastBackupWasDeleted = volume.lastBackupName === options.backupName;
    return await collectGarbage(store, paths, { ...options, lastBackupWasDeleted });
  } finally {
    await lock.release();
  }
}

/** Remove a whole backup volume: backups, blocks, locks, then volume.cfg. */
export async function deleteBackupVolume(store: BackupStore, options: { volumeName: string; lock?: LockOptions }): Promise<void> {
  checkBackupStoreName(options.volumeName, 'volume name');
  const paths = await store.paths(options.volumeName);
  const lock = await BackupLock.acquire(store, paths, LockType.deletion, options.lock);
  try {
    // Longhorn's order; the locks go last but one, ours with them, while we still hold it.
    await store.target.deletePrefix(paths.backupsDir);
    await store.target.deletePrefix(paths.blocksDir);
    await store.target.deletePrefix(paths.locksDir);
    await store.target.deletePrefix(paths.dir);
  } finally {
    await lock.release();
  }
}
