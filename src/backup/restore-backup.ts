// Restore of a backup into a volume: every block is fetched, decompressed and checked against
// its checksum before it is written; offsets the backup does not map are zeroed (unless the
// caller says the volume is zeroed already). With `fromBackupName` (a DR volume holding that
// backup already) only the blocks that differ are fetched and the dropped ones zeroed; when that
// backup is gone from the target the restore is a full one (mode says which ran). Any failure
// fails the restore: it never reports success with a block missing or wrong.
import { backupObjectSizeMaxBytes, requestSizeMaxBytes } from '../lib/limits.ts';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { blockListBytes, isInProgress, type BackupConfig, type BlockMapping } from '../format/backup/backup-config.ts';
import { checkBackupStoreName } from '../format/backup/backup-names.ts';
import type { BackupVolumePaths } from '../format/backup/backup-paths.ts';
import { blockChecksum } from '../format/backup/block-checksum.ts';
import { diffBlockMaps, unmappedRanges } from '../format/backup/block-map.ts';
import { LockType } from '../format/backup/lock-file.ts';
import { decompressBlock } from './block-codec.ts';
import { BackupLock, type LockOptions } from './backup-lock.ts';
import type { BackupStore } from './backup-store.ts';
import { checkedConcurrency, runLimited } from './run-limited.ts';
import { progressReporter, type ProgressCallback, type VolumeWriter } from './snapshot-reader.ts';

export interface RestoreBackupOptions {
  readonly volumeName: string;
  readonly backupName: string;
  /** The backup the volume already holds (incremental restore of a DR volume). */
  readonly fromBackupName?: string;
  /** The volume reads as zeros where it was never written (a fresh sparse volume). */
  readonly targetIsZeroed?: boolean;
  readonly concurrency?: number;
  readonly onProgress?: ProgressCallback;
  /** Take Longhorn's restore lock (default true). */
  readonly takeLock?: boolean;
  readonly lock?: LockOptions;
}

export interface RestoreResult {
  readonly backupName: string;
  /** incremental: only the delta from fromBackupName was written. */
  readonly mode: 'full' | 'incremental';
  readonly blocksFetched: number;
  /** Backup blocks (blockSize each) written as zeros; 0 for a full restore (ranges, not blocks). */
  readonly blocksZeroed: number;
  readonly bytesWritten: number;
  readonly bytesFetched: number;
  readonly elapsedMs: number;
}

/** Fetch one block and prove it is the block its checksum names. */
export async function fetchVerifiedBlock(store: BackupStore, paths: BackupVolumePaths, context: { backup: BackupConfig; block: BlockMapping }): Promise<{ data: Uint8Array; objectBytes: number }> {
  const { backup, block } = context;
  const key = paths.block(block.checksum);
  const object = await store.target.read(key, backupObjectSizeMaxBytes).catch((error: unknown) => {
    if (error instanceof BackupError && error.code === BackupErrorCode.notFound) {
      throw new BackupError(BackupErrorCode.notFound, `Block ${block.checksum} at offset ${block.offsetBytes} of backup ${backup.name} is missing from the target (${key})`, { cause: error });
    }
    throw error;
  });
  let data: Uint8Array;
  try {
    data = await decompressBlock(backup.compressionMethod, object, backup.blockSizeBytes);
  } catch (error) {
    if (!(error instanceof BackupError) || error.code !== BackupErrorCode.corrupt) throw error;
    throw new BackupError(BackupErrorCode.corrupt, `Block ${block.checksum} at offset ${block.offsetBytes} of backup ${backup.name} does not decode: ${error.message}`, { cause: error });
  }
  const actual = await blockChecksum(data, store.sha512);
  if (actual !== block.checksum || data.length !== backup.blockSizeBytes) {
    throw new BackupError(
      BackupErrorCode.checksumMismatch,
      `Block at offset ${block.offsetBytes} of backup ${backup.name}: checksum verification failed (object ${key} holds ${data.length} bytes hashing to ${actual})`,
    );
  }
  return { data, objectBytes: object.length };
}

/** Check Shorthorn's block-list checksum when the config has one. */
export async function checkBlockList(store: BackupStore, backup: BackupConfig): Promise<boolean | undefined> {
  if (backup.blocksChecksum === undefined) return undefined;
  return (await blockChecksum(blockListBytes(backup.blocks), store.sha512)) === backup.blocksChecksum;
}

export async function loadCompleteBackup(store: BackupStore, paths: BackupVolumePaths, backupName: string): Promise<BackupConfig> {
  const backup = await store.loadBackup(paths, backupName);
  if (isInProgress(backup)) throw new BackupError(BackupErrorCode.conflict, `Backup ${backupName} of volume ${paths.volumeName} is not complete (in progress, or left by a failed backup)`);
  if ((await checkBlockList(store, backup)) === false) {
    throw new BackupError(BackupErrorCode.corrupt, `Backup ${backupName} of volume ${paths.volumeName}: its block list does not match its ShorthornBlocksChecksum`);
  }
  return backup;
}

/** The base of an incremental restore, or undefined when it was deleted from the target. */
async function loadBaseBackup(store: BackupStore, paths: BackupVolumePaths, backupName: string): Promise<BackupConfig | undefined> {
  try {
    return await loadCompleteBackup(store, paths, backupName);
  } catch (error) {
    if (error instanceof BackupError && error.code === BackupErrorCode.notFound) return undefined;
    throw error;
  }
}

export async function restoreBackup(store: BackupStore, writer: VolumeWriter, options: RestoreBackupOptions): Promise<RestoreResult> {
  checkBackupStoreName(options.volumeName, 'volume name');
  checkBackupStoreName(options.backupName, 'backup name');
  const concurrency = checkedConcurrency(options.concurrency);
  const paths = await store.paths(options.volumeName);
  const lock = options.takeLock === false ? undefined : await BackupLock.acquire(store, paths, LockType.backupOrRestore, options.lock);
  try {
    const volume = await store.loadVolumeConfig(paths);
    const backup = await loadCompleteBackup(store, paths, options.backupName);
    const blockSize = backup.blockSizeBytes;
    const sizeBytes = writer.sizeBytes();
    if (volume.sizeBytes > sizeBytes) {
      throw new BackupError(BackupErrorCode.conflict, `Cannot restore backup ${backup.name} of ${volume.sizeBytes} bytes into a volume of ${sizeBytes} bytes`);
    }
    const outside = backup.blocks.find((b) => b.offsetBytes + blockSize > sizeBytes);
    if (outside !== undefined) {
      throw new BackupError(BackupErrorCode.corrupt, `Backup ${backup.name} maps offset ${outside.offsetBytes}, past the ${sizeBytes}-byte volume`);
    }
    let fetch: readonly BlockMapping[] = backup.blocks;
    let zero: { offsetBytes: number; lengthBytes: number }[] = options.targetIsZeroed === true ? [] : unmappedRanges(backup.blocks, sizeBytes, blockSize);
    let mode: RestoreResult['mode'] = 'full';
    const from = options.fromBackupName === undefined ? undefined : await loadBaseBackup(store, paths, options.fromBackupName);
    if (from !== undefined) {
      mode = 'incremental';
      if (from.blockSizeBytes !== blockSize) {
        throw new BackupError(BackupErrorCode.conflict, `Backups ${from.name} and ${backup.name} use different block sizes; restore in full`);
      }
      const delta = diffBlockMaps(from.blocks, backup.blocks);
      fetch = delta.fetch;
      zero = delta.zero.map((offsetBytes) => ({ offsetBytes, lengthBytes: blockSize }));
    } else if (options.fromBackupName !== undefined) {
      // The base is gone: the volume holds it, but nothing says what differs. Everything is
      // rewritten, and the unmapped ranges zeroed whatever the caller said.
      zero = unmappedRanges(backup.blocks, sizeBytes, blockSize);
    }
    const progress = progressReporter('restore', fetch.length, options.onProgress);
    await runLimited(fetch, concurrency, async (block) => {
      const { data, objectBytes } = await fetchVerifiedBlock(store, paths, { backup, block });
      await writer.write(block.offsetBytes, data);
      progress.block(data.length, objectBytes);
    });
    for (const range of zero) {
      for (let at = range.offsetBytes; at < range.offsetBytes + range.lengthBytes; at += requestSizeMaxBytes) {
        await writer.writeZeroes(at, Math.min(requestSizeMaxBytes, range.offsetBytes + range.lengthBytes - at));
      }
    }
    await writer.flush();
    if (lock?.refreshError !== undefined) {
      throw new BackupError(BackupErrorCode.io, `The restore lock could not be kept: ${lock.refreshError.message}`, { cause: lock.refreshError });
    }
    return {
      backupName: backup.name, mode, blocksFetched: fetch.length, blocksZeroed: mode === 'incremental' ? zero.length : 0, bytesWritten: progress.state.dataBytes, bytesFetched: progress.state.transferBytes, elapsedMs: progress.elapsedMs(),
    };
  } finally {
    await lock?.release();
  }
}
