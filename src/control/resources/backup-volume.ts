// BackupVolume: the folder of one volume's backups in the backup target (reference §1.10); named
// after the source volume.
import { Type, type Static } from '@sinclair/typebox';
import { freeTextLengthMax } from '../../lib/limits.ts';
import { Bytes, Labels, NameRef, OwnerID, StrictObject, Timestamp } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';

export const BackupVolumeSpecSchema = StrictObject({
  syncRequestedAt: Type.Optional(Timestamp({ description: 'Bump to list the folder again now.' })),
});
export type BackupVolumeSpec = Static<typeof BackupVolumeSpecSchema>;

export const BackupVolumeStatusSchema = StrictObject({
  ownerID: OwnerID(),
  lastModificationTime: Type.Optional(Timestamp()),
  size: Type.Optional(Bytes()),
  labels: Type.Optional(Labels('Labels of the last backup.')),
  createdAt: Type.Optional(Timestamp()),
  lastBackupName: Type.Optional(Type.String({ maxLength: 253 })),
  lastBackupAt: Type.Optional(Timestamp()),
  dataStored: Type.Optional(Bytes({ description: 'Bytes of blocks stored for this volume.' })),
  messages: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: freeTextLengthMax }), { maxProperties: 32 })),
  backingImageName: Type.Optional(NameRef()),
  lastSyncedAt: Type.Optional(Timestamp()),
});
export type BackupVolumeStatus = Static<typeof BackupVolumeStatusSchema>;

export type BackupVolume = Resource<BackupVolumeSpec, BackupVolumeStatus>;
