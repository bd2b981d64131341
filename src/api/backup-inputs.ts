// Inputs of the backup routes and actions, as TypeBox schemas (validation and the OpenAPI
// document), with Longhorn's names: snapshotBackup on a volume; backupList, backupGet,
// backupDelete, backupVolumeSync on a backup volume; backupTargetSync on a backup target. Ours:
// backupVerify (re-hash every block of a backup in the target).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Labels, NameRef, StrictObject, StringEnum } from '../control/resources/common-schemas.ts';
import { backupModes } from '../control/resources/backup.ts';

export const SnapshotBackupInputSchema = StrictObject({
  snapshotName: Type.Optional(NameRef({ description: 'The snapshot to back up.' })),
  name: Type.Optional(NameRef({ description: 'Longhorn\'s spelling of snapshotName.' })),
  labels: Type.Optional(Labels('Labels stored with the backup.')),
  backupMode: Type.Optional(StringEnum(backupModes, { description: 'full uploads every block again; incremental (default) only what changed.' })),
});
export type SnapshotBackupInput = Static<typeof SnapshotBackupInputSchema>;

export const BackupNameInputSchema = StrictObject({ name: NameRef({ description: 'The backup.' }) });
export type BackupNameInput = Static<typeof BackupNameInputSchema>;

export const EmptyBackupInputSchema = StrictObject({});

export const backupVolumeActionNames = ['backupList', 'backupGet', 'backupDelete', 'backupVolumeSync', 'backupVerify'] as const;
export type BackupVolumeActionName = (typeof backupVolumeActionNames)[number];

export const backupVolumeActionInputs: Readonly<Record<BackupVolumeActionName, TSchema>> = {
  backupList: EmptyBackupInputSchema,
  backupGet: BackupNameInputSchema,
  backupDelete: BackupNameInputSchema,
  backupVolumeSync: EmptyBackupInputSchema,
  backupVerify: BackupNameInputSchema,
};

export const backupTargetActionNames = ['backupTargetSync'] as const;
