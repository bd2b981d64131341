// The engine's BackupRunner: src/backup's createBackup and restoreBackup on a target opened for
// each job from the request's URL and credentials. Credentials given in a request are used alone
// (not mixed with this process's environment); without them the target falls back to the
// environment, as Longhorn's engine does. They are never logged or echoed.
import { BackupStore } from '../backup/backup-store.ts';
import { createBackup } from '../backup/create-backup.ts';
import { openBackupTarget, type OpenBackupTargetOptions } from '../backup/open-backup-target.ts';
import { restoreBackup } from '../backup/restore-backup.ts';
import type { BackupTarget } from '../backup/backup-target.ts';
import type { BackupRunner } from '../engine/backup-jobs.ts';

function targetOptions(credentials: Readonly<Record<string, string>> | undefined): OpenBackupTargetOptions {
  return credentials === undefined ? {} : { s3: { env: { ...credentials } } };
}

async function withTarget<T>(url: string, credentials: Readonly<Record<string, string>> | undefined, work: (store: BackupStore) => Promise<T>): Promise<T> {
  const target: BackupTarget = await openBackupTarget(url, targetOptions(credentials));
  try {
    return await work(new BackupStore(target));
  } finally {
    await target.close();
  }
}

export const engineBackupRunner: BackupRunner = {
  backup: ({ volumeName, reader, request, onProgress }) =>
    withTarget(request.targetURL, request.credentials, async (store) => {
      const result = await createBackup(store, reader, {
        volumeName,
        backupName: request.backupName,
        ...(request.compression === undefined ? {} : { compression: request.compression }),
        ...(request.mode === undefined ? {} : { mode: request.mode }),
        ...(request.fullBackupInterval === undefined ? {} : { fullBackupInterval: request.fullBackupInterval }),
        ...(request.concurrency === undefined ? {} : { concurrency: request.concurrency }),
        ...(request.labels === undefined ? {} : { labels: request.labels }),
        onProgress,
      });
      // The backup's own record of what was new (re-uploads in a full backup are not).
      const saved = await store.loadBackup(await store.paths(volumeName), result.backupName);
      return { backupURL: result.url, mode: result.mode, newlyUploadedBytes: saved.newlyUploadedDataSize, blocksUploaded: result.blocksUploaded };
    }),
  restore: ({ writer, targetIsZeroed, request, onProgress }) =>
    withTarget(request.targetURL, request.credentials, async (store) => {
      const result = await restoreBackup(store, writer, {
        volumeName: request.backupVolumeName,
        backupName: request.backupName,
        ...(request.fromBackupName === undefined ? {} : { fromBackupName: request.fromBackupName }),
        targetIsZeroed,
        ...(request.concurrency === undefined ? {} : { concurrency: request.concurrency }),
        onProgress,
      });
      return { mode: result.mode, blocksFetched: result.blocksFetched, blocksZeroed: result.blocksZeroed };
    }),
};
