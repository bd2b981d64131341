// Mirror a backup target into BackupVolume and Backup resources (Longhorn's backup target and
// backup volume controllers, reference §1.9–1.11), pure: from one listing of the target and the
// resources now stored, the writes that make the resources show what the target holds —
// including backups another cluster wrote. A resource whose backup is gone from the target is
// deleted here without touching the target (its finalizer is dropped first), and only once the
// mirror has seen it at least once (status.lastSyncedAt), so a backup the manager has just
// started is never mistaken for a deleted one. Volumes whose listing failed are left alone.
import { freeTextLengthMax, labelCountMax, labelLengthMax, volumeSizeMaxBytes } from '../../lib/limits.ts';
import type { BackupVolume, BackupVolumeStatus } from '../resources/backup-volume.ts';
import type { Backup, BackupStatus } from '../resources/backup.ts';
import { timestampPattern } from '../resources/common-schemas.ts';
import { apiVersion, nameProblem } from '../resources/object-meta.ts';
import type { Action } from '../runtime/controller.ts';
import type { BackupEntry, BackupVolumeEntry } from './backup-store-port.ts';

/** Keeps a Backup until its backup is deleted from the target. */
export const backupFinalizer = 'shorthorn.io/backup';
/** Keeps a BackupVolume until the whole backup volume is deleted from the target. */
export const backupVolumeFinalizer = 'shorthorn.io/backup-volume';
/** Label on Backup resources naming their backup volume (Longhorn's `backup-volume`). */
export const backupVolumeLabel = 'shorthorn.io/backup-volume';

/** What one poll found: each volume's entry, or 'failed' when it could not be read. */
export type TargetListing = ReadonlyMap<string, BackupVolumeEntry | 'failed'>;

export interface MirrorPlan {
  readonly actions: Action[];
  readonly notes: string[];
}

const timestampRegExp = new RegExp(timestampPattern);
const time = (text: string | undefined): { t: string } | undefined => (text !== undefined && timestampRegExp.test(text) ? { t: text } : undefined);
const text = (value: string): string => value.slice(0, freeTextLengthMax);

/** Labels as the schema allows them; a foreign target may hold more or longer ones. */
export function fittingLabels(labels: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (Object.keys(out).length >= labelCountMax) break;
    if (key.length <= labelLengthMax && value.length <= labelLengthMax) out[key] = value;
  }
  return out;
}

const bytes = (value: number | undefined): number | undefined => (value !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : undefined);
const opt = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));

export function backupVolumeStatusOf(entry: BackupVolumeEntry): BackupVolumeStatus {
  return {
    ...opt('size', bytes(entry.sizeBytes)),
    labels: fittingLabels(entry.labels),
    ...opt('createdAt', time(entry.createdAt)?.t),
    ...opt('lastBackupName', entry.lastBackupName === '' ? undefined : entry.lastBackupName?.slice(0, 253)),
    ...opt('lastBackupAt', time(entry.lastBackupAt)?.t),
    ...opt('dataStored', bytes(entry.dataStoredBytes)),
    ...opt('backingImageName', entry.backingImageName !== undefined && nameProblem(entry.backingImageName) === null ? entry.backingImageName : undefined),
    ...(entry.error === undefined ? {} : { messages: { error: text(entry.error) } }),
  };
}

/** The fields of a Backup's status that the target decides. */
export function backupStatusOf(volumeName: string, entry: BackupEntry): BackupStatus {
  const volumeSize = bytes(entry.volumeSizeBytes);
  return {
    state: entry.state === 'complete' ? 'Completed' : entry.state === 'in_progress' ? 'InProgress' : 'Error',
    ...(entry.state === 'complete' ? { progress: 100 } : {}),
    ...(entry.url.length <= 2048 ? { url: entry.url } : {}),
    ...opt('snapshotName', entry.snapshotName?.slice(0, 63)),
    ...opt('snapshotCreatedAt', time(entry.snapshotCreatedAt)?.t),
    ...opt('backupCreatedAt', time(entry.createdAt)?.t),
    ...opt('size', bytes(entry.sizeBytes)),
    ...(entry.labels === undefined ? {} : { labels: fittingLabels(entry.labels) }),
    volumeName,
    ...(volumeSize !== undefined && volumeSize <= volumeSizeMaxBytes ? { volumeSize } : {}),
    ...opt('compressionMethod', entry.compressionMethod),
    ...opt('newlyUploadDataSize', bytes(entry.newlyUploadedBytes)),
    ...opt('reUploadedDataSize', bytes(entry.reUploadedBytes)),
    ...(entry.error === undefined ? {} : { error: text(entry.error) }),
  };
}

/** Backups the manager is still running: their status belongs to the backup controller. */
export function isRunningHere(backup: Backup): boolean {
  const state = backup.status?.state;
  return backup.spec.snapshotName !== undefined && state !== 'Completed' && state !== 'Error';
}

export function volumeOfBackup(backup: Backup): string | undefined {
  return backup.metadata.labels?.[backupVolumeLabel] ?? backup.status?.volumeName;
}

function sameExceptSync(a: object, b: object): boolean {
  const strip = (x: object): string => JSON.stringify({ ...x, lastSyncedAt: undefined, ownerID: undefined });
  return strip(a) === strip(b);
}

export function planMirror(input: {
  readonly listing: TargetListing;
  readonly backupVolumes: readonly BackupVolume[];
  readonly backups: readonly Backup[];
  readonly nowText: string;
}): MirrorPlan {
  const { listing, nowText } = input;
  const actions: Action[] = [];
  const notes: string[] = [];
  const bvByName = new Map(input.backupVolumes.map((bv) => [bv.metadata.name, bv]));
  const backupByName = new Map(input.backups.map((b) => [b.metadata.name, b]));
  const forget = (object: BackupVolume | Backup, finalizer: string): void => {
    // Gone from the target already: drop the finalizer so that deleting the resource does not
    // try to delete it there again (a deletion lock would recreate the folder).
    const finalizers = (object.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    if (finalizers.length !== (object.metadata.finalizers ?? []).length) actions.push({ type: 'update', object: { ...object, metadata: { ...object.metadata, finalizers } } });
    if (object.metadata.deletionTimestamp === undefined) actions.push({ type: 'delete', kind: object.kind, name: object.metadata.name });
  };

  const seenBackups = new Set<string>();
  for (const [volumeName, entry] of listing) {
    if (nameProblem(volumeName) !== null) {
      notes.push(`backup volume ${JSON.stringify(volumeName.slice(0, 100))} in the target has a name resources cannot have; not shown`);
      continue;
    }
    if (entry === 'failed') {
      // Unknown this round: keep its backups as they are.
      for (const b of input.backups) if (volumeOfBackup(b) === volumeName) seenBackups.add(b.metadata.name);
      continue;
    }
    const status = backupVolumeStatusOf(entry);
    const bv = bvByName.get(volumeName);
    if (bv === undefined) {
      actions.push({
        type: 'create',
        object: { apiVersion, kind: 'BackupVolume', metadata: { name: volumeName, finalizers: [backupVolumeFinalizer] }, spec: {}, status: { ...status, lastSyncedAt: nowText } },
      });
      notes.push(`backup volume ${volumeName} found in the target`);
    } else if (bv.metadata.deletionTimestamp === undefined) {
      const next = { ...(bv.status?.ownerID === undefined ? {} : { ownerID: bv.status.ownerID }), ...status };
      if (!sameExceptSync(next, bv.status ?? {}) || bv.status?.lastSyncedAt === undefined || (bv.spec.syncRequestedAt ?? '') > bv.status.lastSyncedAt) {
        actions.push({ type: 'updateStatus', object: { ...bv, status: { ...next, lastSyncedAt: nowText } } });
      }
    }
    if (bv?.metadata.deletionTimestamp !== undefined) {
      for (const b of entry.backups) seenBackups.add(b.name);
      continue;
    }
    for (const backupEntry of entry.backups) {
      seenBackups.add(backupEntry.name);
      if (nameProblem(backupEntry.name) !== null) {
        notes.push(`backup ${JSON.stringify(backupEntry.name.slice(0, 100))} of ${volumeName} has a name resources cannot have; not shown`);
        continue;
      }
      const mirrored = backupStatusOf(volumeName, backupEntry);
      const existing = backupByName.get(backupEntry.name);
      if (existing === undefined) {
        actions.push({
          type: 'create',
          object: {
            apiVersion, kind: 'Backup',
            metadata: { name: backupEntry.name, labels: { [backupVolumeLabel]: volumeName }, finalizers: [backupFinalizer] },
            spec: { backupMode: 'incremental' },
            status: { ...mirrored, lastSyncedAt: nowText },
          },
        });
        notes.push(`backup ${backupEntry.name} of ${volumeName} found in the target`);
        continue;
      }
      if (existing.metadata.deletionTimestamp !== undefined || isRunningHere(existing)) continue;
      if (volumeOfBackup(existing) !== volumeName) continue;
      // A failed backup of ours whose placeholder is still there stays an error.
      if (existing.spec.snapshotName !== undefined && existing.status?.state === 'Error') continue;
      const next = { ...existing.status, ...mirrored };
      if (!sameExceptSync(next, existing.status ?? {}) || existing.status?.lastSyncedAt === undefined) {
        actions.push({ type: 'updateStatus', object: { ...existing, status: { ...next, lastSyncedAt: nowText } } });
      }
    }
  }

  // Gone from the target: only what the mirror has seen before, never a backup still running.
  for (const bv of input.backupVolumes) {
    if (listing.has(bv.metadata.name) || bv.status?.lastSyncedAt === undefined) continue;
    notes.push(`backup volume ${bv.metadata.name} is no longer in the target; removing its resource`);
    forget(bv, backupVolumeFinalizer);
  }
  for (const backup of input.backups) {
    if (seenBackups.has(backup.metadata.name) || backup.status?.lastSyncedAt === undefined || isRunningHere(backup)) continue;
    if (backup.spec.snapshotName !== undefined && backup.status.state === 'Error') continue;
    notes.push(`backup ${backup.metadata.name} is no longer in the target; removing its resource`);
    forget(backup, backupFinalizer);
  }
  return { actions, notes };
}
