// Backup of one snapshot into a backup volume, Longhorn's algorithm with its compatible
// improvements: incremental against the last backup when its snapshot still exists (only the
// blocks the reader says changed are read), full on request or every N-th backup (re-uploading
// existing blocks, which repairs damaged objects), existing blocks found by one listing instead
// of a request per block, all-zero blocks left out of the map, uploads in parallel.
import { backupBlockSizeDefaultBytes } from '../lib/limits.ts';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { blockListBytes, type BackupConfig } from '../format/backup/backup-config.ts';
import { checkBackupStoreName, generatedName } from '../format/backup/backup-names.ts';
import { blockChecksum, isAllZero } from '../format/backup/block-checksum.ts';
import { mergeBlockMap, type BlockChange } from '../format/backup/block-map.ts';
import { backupModeParameter, blockSizeParameter, formatBlockSize } from '../format/backup/block-size.ts';
import type { CompressionMethod } from '../format/backup/compression-method.ts';
import { goTime } from '../format/backup/go-json.ts';
import { LockType } from '../format/backup/lock-file.ts';
import type { BackupVolumeConfig } from '../format/backup/backup-volume-config.ts';
import { compressBlock } from './block-codec.ts';
import { BackupLock, type LockOptions } from './backup-lock.ts';
import type { BackupStore } from './backup-store.ts';
import { checkedConcurrency, runLimited } from './run-limited.ts';
import { progressReporter, type ProgressCallback, type SnapshotReader } from './snapshot-reader.ts';

/** Parameters key where Shorthorn counts incremental backups since the last full one. */
export const incrementalCountParameter = 'shorthorn-incrementals-since-full';

export interface CreateBackupOptions {
  readonly volumeName: string;
  /** Generated as backup-<16 hex> when absent. */
  readonly backupName?: string;
  /** Used when the backup volume is new; an existing volume keeps its method (Longhorn's rule). */
  readonly compression?: CompressionMethod;
  /** 'full' ignores the last backup and re-uploads every block. */
  readonly mode?: 'incremental' | 'full';
  /** After this many incremental backups in a row, the next one is full (0: never forced). */
  readonly fullBackupInterval?: number;
  readonly blockSizeBytes?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly concurrency?: number;
  readonly onProgress?: ProgressCallback;
  readonly lock?: LockOptions;
  /** Extra volume.cfg fields for a new backup volume. */
  readonly storageClassName?: string;
}

export interface BackupResult {
  readonly volumeName: string;
  readonly backupName: string;
  readonly url: string;
  readonly mode: 'incremental' | 'full';
  readonly compression: CompressionMethod;
  /** Blocks in the backup's map (non-zero block slots of the snapshot). */
  readonly blocksMapped: number;
  readonly blocksRead: number;
  readonly blocksUploaded: number;
  readonly blocksAlreadyStored: number;
  readonly blocksZero: number;
  readonly bytesRead: number;
  /** Bytes sent to the target for blocks (compressed). */
  readonly bytesUploaded: number;
  readonly elapsedMs: number;
  /** Problems that did not fail the backup (a lock that could not be removed). */
  readonly warnings: readonly string[];
}

interface Plan {
  readonly last: BackupConfig | undefined;
  readonly mode: 'incremental' | 'full';
  readonly incrementalCount: number;
}

async function plan(store: BackupStore, reader: SnapshotReader, context: { volume: BackupVolumeConfig; options: CreateBackupOptions; blockSize: number }): Promise<Plan> {
  const { volume, options, blockSize } = context;
  const full: Plan = { last: undefined, mode: 'full', incrementalCount: 0 };
  if (options.mode === 'full' || volume.lastBackupName === '') return full;
  const paths = await store.paths(volume.name);
  let last: BackupConfig;
  try {
    last = await store.loadBackup(paths, volume.lastBackupName);
  } catch (error) {
    // Longhorn falls back to a full backup when the last one cannot be loaded; so do we.
    if (error instanceof BackupError && (error.code === BackupErrorCode.notFound || error.code === BackupErrorCode.corrupt)) return full;
    throw error;
  }
  if (last.createdTime === '' || last.snapshotName === reader.snapshotName || last.blockSizeBytes !== blockSize) return full;
  if (last.snapshotName === '' || !(await reader.hasSnapshot(last.snapshotName))) return full;
  const count = Number(last.parameters[incrementalCountParameter] ?? '0');
  const since = last.isIncremental && Number.isSafeInteger(count) ? count : 0;
  const interval = options.fullBackupInterval ?? 0;
  if (interval > 0 && since >= interval) return full;
  return { last, mode: 'incremental', incrementalCount: since + 1 };
}

export async function createBackup(store: BackupStore, reader: SnapshotReader, options: CreateBackupOptions): Promise<BackupResult> {
  const volumeName = checkBackupStoreName(options.volumeName, 'volume name');
  const backupName = checkBackupStoreName(options.backupName ?? generatedName('backup', store.randomBytes(8)), 'backup name');
  const concurrency = checkedConcurrency(options.concurrency);
  const blockSize = options.blockSizeBytes ?? backupBlockSizeDefaultBytes;
  const sizeBytes = reader.sizeBytes();
  if (sizeBytes % blockSize !== 0) {
    throw new BackupError(BackupErrorCode.invalidArgument, `Volume ${volumeName} of ${sizeBytes} bytes is not a whole number of ${blockSize}-byte backup blocks`);
  }
  const paths = await store.paths(volumeName);
  const lock = await BackupLock.acquire(store, paths, LockType.backupOrRestore, options.lock);
  const warnings: string[] = [];
  let placeholderWritten = false;
  let finished = false;
  try {
    const nowMs = store.clock.nowMs();
    if (!(await store.target.exists(paths.volumeConfig))) {
      await store.saveVolumeConfig(paths, {
        name: volumeName, sizeBytes, labels: options.labels ?? {}, createdTime: goTime(nowMs), lastBackupName: '', lastBackupAt: '',
        blockCount: 0, backingImageName: '', backingImageChecksum: '', compressionMethod: options.compression ?? 'lz4',
        storageClassName: options.storageClassName ?? '', dataEngine: 'v1',
      });
    }
    const volume = await store.loadVolumeConfig(paths);
    const compression = volume.compressionMethod;
    const { last, mode, incrementalCount } = await plan(store, reader, { volume, options, blockSize });
    const ranges = await reader.changedRanges(last?.snapshotName, blockSize);
    const offsets: number[] = [];
    for (const range of ranges) {
      if (range.offsetBytes % blockSize !== 0 || range.lengthBytes % blockSize !== 0 || range.offsetBytes + range.lengthBytes > sizeBytes) {
        throw new BackupError(BackupErrorCode.invalidArgument, `The snapshot reader reported range ${range.offsetBytes}+${range.lengthBytes}, not whole ${blockSize}-byte blocks inside ${sizeBytes} bytes`);
      }
      for (let at = range.offsetBytes; at < range.offsetBytes + range.lengthBytes; at += blockSize) offsets.push(at);
    }
    const stored = new Set((await store.listBlocks(paths)).keys());
    // An incremental backup keeps every unchanged block of the last backup's map. A block missing
    // from the target would make it unrestorable, and every later incremental with it (Longhorn
    // #7069, fixed there in #9784): read those offsets again so their blocks are uploaded anew.
    const missing = (last?.blocks ?? []).filter((b) => !stored.has(b.checksum));
    if (missing.length > 0) {
      const planned = new Set(offsets);
      for (const b of missing) if (!planned.has(b.offsetBytes)) offsets.push(b.offsetBytes);
      offsets.sort((a, b) => a - b);
      warnings.push(`${missing.length} blocks of the last backup ${last?.name ?? '?'} were missing from the target and were read from the snapshot again`);
    }
    const placeholder: BackupConfig = {
      name: backupName, volumeName, snapshotName: '', snapshotCreatedAt: '', createdTime: '', sizeBytes: 0, labels: {}, parameters: {},
      isIncremental: false, compressionMethod: compression, newlyUploadedDataSize: 0, reUploadedDataSize: 0, blocks: [], blockSizeBytes: blockSize,
    };
    if (await store.target.exists(paths.backupConfig(backupName))) {
      throw new BackupError(BackupErrorCode.conflict, `Backup ${backupName} of volume ${volumeName} already exists`);
    }
    await store.saveBackup(paths, placeholder);
    placeholderWritten = true;

    const progress = progressReporter('backup', offsets.length, options.onProgress);
    const changes: BlockChange[] = [];
    const uploading = new Map<string, Promise<void>>();
    const uploadedHere = new Set<string>();
    const counts = { uploaded: 0, existing: 0, zero: 0, newBytes: 0, reBytes: 0, newBlocks: 0 };
    await runLimited(offsets, concurrency, async (offsetBytes) => {
      const data = await reader.read(offsetBytes, blockSize);
      if (data.length !== blockSize) throw new BackupError(BackupErrorCode.io, `The snapshot reader returned ${data.length} bytes at ${offsetBytes}, expected ${blockSize}`);
      if (isAllZero(data)) {
        changes.push({ offsetBytes, checksum: undefined });
        counts.zero++;
        progress.block(blockSize, 0);
        return;
      }
      const checksum = await blockChecksum(data, store.sha512);
      changes.push({ offsetBytes, checksum });
      const pending = uploading.get(checksum);
      if (pending !== undefined || uploadedHere.has(checksum) || (stored.has(checksum) && mode !== 'full')) {
        // The same content is in the store or on its way there (in-backup dedup).
        await pending;
        counts.existing++;
        progress.block(blockSize, 0);
        return;
      }
      const reupload = stored.has(checksum);
      const upload = (async () => {
        const object = await compressBlock(compression, data);
        await store.target.write(paths.block(checksum), object);
        counts.uploaded++;
        if (reupload) counts.reBytes += object.length;
        else {
          counts.newBytes += object.length;
          counts.newBlocks++;
        }
        stored.add(checksum);
        uploadedHere.add(checksum);
        progress.block(blockSize, object.length);
      })();
      uploading.set(checksum, upload);
      try {
        await upload;
      } finally {
        uploading.delete(checksum);
      }
    });
    changes.sort((a, b) => a.offsetBytes - b.offsetBytes);
    const blocks = mergeBlockMap(last?.blocks ?? [], changes);
    const createdAtMs = reader.createdAtMs ?? store.clock.nowMs();
    const final: BackupConfig = {
      ...placeholder,
      snapshotName: reader.snapshotName,
      snapshotCreatedAt: goTime(createdAtMs),
      createdTime: goTime(store.clock.nowMs()),
      sizeBytes: blocks.length * blockSize,
      labels: options.labels ?? {},
      parameters: { [backupModeParameter]: mode, [blockSizeParameter]: formatBlockSize(blockSize), [incrementalCountParameter]: String(incrementalCount) },
      isIncremental: last !== undefined,
      newlyUploadedDataSize: counts.newBytes,
      reUploadedDataSize: counts.reBytes,
      blocks,
      blocksChecksum: await blockChecksum(blockListBytes(blocks), store.sha512),
    };
    if (lock.refreshError !== undefined) {
      throw new BackupError(BackupErrorCode.io, `The lock on backup volume ${volumeName} could not be kept: ${lock.refreshError.message}`, { cause: lock.refreshError });
    }
    await store.saveBackup(paths, final);
    finished = true;
    const latest = await store.loadVolumeConfig(paths);
    await store.saveVolumeConfig(paths, {
      ...latest,
      lastBackupName: backupName,
      lastBackupAt: final.snapshotCreatedAt,
      blockCount: latest.blockCount + counts.newBlocks,
      sizeBytes,
      labels: options.labels ?? latest.labels,
    });
    return {
      volumeName, backupName, url: store.backupUrl(volumeName, backupName), mode, compression, blocksMapped: blocks.length,
      blocksRead: offsets.length, blocksUploaded: counts.uploaded, blocksAlreadyStored: counts.existing, blocksZero: counts.zero,
      bytesRead: progress.state.dataBytes, bytesUploaded: counts.newBytes + counts.reBytes, elapsedMs: progress.elapsedMs(), warnings,
    };
  } catch (error) {
    if (placeholderWritten && !finished) {
      // Leave no in-progress config behind when we can (it holds back garbage collection).
      try {
        await store.target.delete([paths.backupConfig(backupName)]);
      } catch (cleanup) {
        const message = error instanceof Error ? error.message : String(error);
        const code = error instanceof BackupError ? error.code : BackupErrorCode.io;
        throw new BackupError(code, `${message}; the in-progress config of backup ${backupName} could not be removed either: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}`, { cause: error });
      }
    }
    throw error;
  } finally {
    try {
      await lock.release();
    } catch (error) {
      // The backup's outcome stands; the lock expires on its own after 150 s.
      warnings.push(`the lock ${lock.name} could not be removed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
