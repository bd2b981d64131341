// Backup: one backup of a snapshot in the backup target (reference §1.9). Creating the resource
// starts the backup; the BackupVolume controller also creates these to mirror the target.
import { Type, type Static } from '@sinclair/typebox';
import { freeTextLengthMax, urlLengthMax, volumeSizeMaxBytes } from '../../lib/limits.ts';
import { Bytes, Labels, NameRef, OwnerID, StrictObject, StringEnum, Text, Timestamp } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';
import { backupCompressionMethods } from './volume.ts';

export const backupModes = ['full', 'incremental'] as const;
export type BackupMode = (typeof backupModes)[number];
/** Longhorn's backup states, spelled as Longhorn spells them. */
export const backupStates = ['Pending', 'InProgress', 'Completed', 'Error', 'Unknown'] as const;
export type BackupState = (typeof backupStates)[number];

export const BackupSpecSchema = StrictObject({
  snapshotName: Type.Optional(NameRef({ description: 'Snapshot to back up; unset for backups found in the target.' })),
  labels: Type.Optional(Labels('Labels stored with the backup.')),
  backupMode: StringEnum(backupModes, { default: 'incremental', description: 'full uploads every block again.' }),
  syncRequestedAt: Type.Optional(Timestamp({ description: 'Bump to read the backup from the target again.' })),
});
export type BackupSpec = Static<typeof BackupSpecSchema>;

export const BackupStatusSchema = StrictObject({
  ownerID: OwnerID(),
  state: Type.Optional(StringEnum(backupStates)),
  progress: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  url: Type.Optional(Type.String({ maxLength: urlLengthMax })),
  snapshotName: Type.Optional(Type.String({ maxLength: 63 })),
  snapshotCreatedAt: Type.Optional(Timestamp()),
  backupCreatedAt: Type.Optional(Timestamp()),
  size: Type.Optional(Bytes()),
  labels: Type.Optional(Labels('Labels as stored in the target.')),
  messages: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: freeTextLengthMax }), { maxProperties: 32 })),
  volumeName: Type.Optional(NameRef()),
  volumeSize: Type.Optional(Type.Integer({ minimum: 0, maximum: volumeSizeMaxBytes })),
  volumeCreated: Type.Optional(Timestamp()),
  lastSyncedAt: Type.Optional(Timestamp()),
  compressionMethod: Type.Optional(StringEnum(backupCompressionMethods)),
  newlyUploadDataSize: Type.Optional(Bytes()),
  reUploadedDataSize: Type.Optional(Bytes()),
  error: Type.Optional(Text()),
});
export type BackupStatus = Static<typeof BackupStatusSchema>;

export type Backup = Resource<BackupSpec, BackupStatus>;
