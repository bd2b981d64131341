// The backup library (src/backup) behind the control plane's BackupStoreSession port
// (src/control/backups/backup-store-port.ts): listing for the mirror, delete with GC, verify.
// Credentials go to the S3 target as its environment; they never appear in a message.
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { BackupStore } from '../backup/backup-store.ts';
import { deleteBackup, deleteBackupVolume } from '../backup/delete-backup.ts';
import { openBackupTarget } from '../backup/open-backup-target.ts';
import { verifyBackup } from '../backup/verify-backup.ts';
import {
  BackupStorePortError,
  type BackupEntry,
  type BackupStorePortErrorCode,
  type BackupStoreSession,
  type BackupVolumeEntry,
  type OpenBackupStore,
} from '../control/backups/backup-store-port.ts';

function portError(error: unknown): unknown {
  if (!(error instanceof BackupError)) return error;
  const code: BackupStorePortErrorCode =
    error.code === BackupErrorCode.notFound ? 'not_found'
      : error.code === BackupErrorCode.invalidArgument ? 'invalid'
        : error.code === BackupErrorCode.conflict || error.code === BackupErrorCode.locked ? 'conflict'
          : 'unavailable';
  return new BackupStorePortError(code, error.message, { cause: error });
}

async function translated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw portError(error);
  }
}

class LibrarySession implements BackupStoreSession {
  readonly url: string;
  private readonly store: BackupStore;
  constructor(store: BackupStore) {
    this.store = store;
    this.url = store.target.url;
  }

  listVolumeNames(): Promise<string[]> {
    return translated(() => this.store.listVolumes());
  }

  readVolume(name: string): Promise<BackupVolumeEntry> {
    return translated(async () => {
      const paths = await this.store.paths(name);
      let volume: Omit<BackupVolumeEntry, 'name' | 'backups'>;
      let blockSize = 0;
      try {
        const config = await this.store.loadVolumeConfig(paths);
        volume = {
          sizeBytes: config.sizeBytes, labels: config.labels, createdAt: config.createdTime,
          lastBackupName: config.lastBackupName, lastBackupAt: config.lastBackupAt,
          ...(config.backingImageName === '' ? {} : { backingImageName: config.backingImageName }),
        };
        blockSize = config.blockCount;
      } catch (error) {
        if (!(error instanceof BackupError) || error.code === BackupErrorCode.io) throw error;
        volume = { error: error.message };
      }
      const backups: BackupEntry[] = [];
      let blockSizeBytes = 0;
      for (const listing of await this.store.listBackups(paths)) {
        const url = this.store.backupUrl(name, listing.name);
        if (listing.state === 'unreadable') {
          backups.push({ name: listing.name, state: 'unreadable', error: listing.error.message, url });
          continue;
        }
        const c = listing.config;
        blockSizeBytes = c.blockSizeBytes;
        backups.push({
          name: listing.name, state: listing.state, url, snapshotName: c.snapshotName, snapshotCreatedAt: c.snapshotCreatedAt,
          ...(c.createdTime === '' ? {} : { createdAt: c.createdTime }),
          sizeBytes: c.sizeBytes, labels: c.labels, compressionMethod: c.compressionMethod,
          newlyUploadedBytes: c.newlyUploadedDataSize, reUploadedBytes: c.reUploadedDataSize,
          ...(volume.sizeBytes === undefined ? {} : { volumeSizeBytes: volume.sizeBytes }),
        });
      }
      // volume.cfg counts blocks, not bytes: the block size comes from a backup of the volume.
      const dataStoredBytes = blockSizeBytes > 0 ? blockSize * blockSizeBytes : undefined;
      return { name, ...volume, ...(dataStoredBytes === undefined ? {} : { dataStoredBytes }), backups };
    });
  }

  deleteBackup(volumeName: string, backupName: string): Promise<{ blocksDeleted: number; skipped?: string }> {
    return translated(async () => {
      const result = await deleteBackup(this.store, { volumeName, backupName });
      return { blocksDeleted: result.blocksDeleted, ...(result.skipped === undefined ? {} : { skipped: result.skipped }) };
    });
  }

  deleteBackupVolume(volumeName: string): Promise<void> {
    return translated(() => deleteBackupVolume(this.store, { volumeName }));
  }

  verifyBackup(volumeName: string, backupName: string) {
    return translated(async () => {
      const report = await verifyBackup(this.store, { volumeName, backupName });
      return { ...report, missing: report.missing.map(({ offsetBytes, checksum, reason }) => ({ offsetBytes, checksum, reason })), corrupt: report.corrupt.map(({ offsetBytes, checksum, reason }) => ({ offsetBytes, checksum, reason })) };
    });
  }

  close(): Promise<void> {
    return this.store.target.close();
  }
}

export const openLibraryBackupStore: OpenBackupStore = (url, credentials) =>
  translated(async () => {
    const target = await openBackupTarget(url, { s3: { env: { ...credentials } } });
    return new LibrarySession(new BackupStore(target));
  });
