// The input of each volume action, as TypeBox schemas (validation and the OpenAPI document) with
// Longhorn's field names (reference §4.3): attachInput, detachInput, snapshotInput, ...
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Labels, NameRef, StrictObject, StringEnum } from '../control/resources/common-schemas.ts';
import { attacherTypes } from '../control/resources/volume-attachment.ts';
import { volumeFrontends } from '../control/resources/volume.ts';
import { replicaCountMax, snapshotCountMax } from '../lib/limits.ts';
import { SnapshotBackupInputSchema } from './backup-inputs.ts';
import type { VolumeActionName } from './resource-view.ts';
import { RecurringJobInputSchema } from './volume-job-actions.ts';

const ticketId = Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$' });
/** Bytes as a number, or as Longhorn clients send them: a decimal string, optionally "10Gi". */
export const SizeInput = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ maxLength: 32 })], {
  description: 'Bytes, or a string such as "10737418240", "10Gi" or "10G".',
});

export const AttachInputSchema = StrictObject({
  hostId: NameRef({ description: 'The node to attach the volume to.' }),
  disableFrontend: Type.Optional(Type.Boolean({ description: 'Maintenance mode: run the engine without exposing the device.' })),
  attachedBy: Type.Optional(Type.String({ maxLength: 253 })),
  attacherType: Type.Optional(StringEnum(attacherTypes)),
  attachmentID: Type.Optional(ticketId),
});
export type AttachInput = Static<typeof AttachInputSchema>;

export const DetachInputSchema = StrictObject({
  attachmentID: Type.Optional(ticketId),
  hostId: Type.Optional(NameRef()),
  forceDetach: Type.Optional(Type.Boolean({ description: 'Remove every attachment ticket, whoever made it.' })),
});
export type DetachInput = Static<typeof DetachInputSchema>;

export const SnapshotInputSchema = StrictObject({
  name: Type.Optional(NameRef({ description: 'Snapshot name; a UUID when left out.' })),
  labels: Type.Optional(Labels('Labels stored with the snapshot.')),
});
export type SnapshotInput = Static<typeof SnapshotInputSchema>;

export const SnapshotNameInputSchema = StrictObject({ name: NameRef() });
export type SnapshotNameInput = Static<typeof SnapshotNameInputSchema>;

export const ExpandInputSchema = StrictObject({ size: SizeInput });
export type ExpandInput = Static<typeof ExpandInputSchema>;

export const ReplicaCountInputSchema = StrictObject({
  replicaCount: Type.Integer({ minimum: 1, maximum: replicaCountMax }),
});
export type ReplicaCountInput = Static<typeof ReplicaCountInputSchema>;

export const SnapshotMaxCountInputSchema = StrictObject({
  snapshotMaxCount: Type.Integer({ minimum: 0, maximum: snapshotCountMax, description: `Snapshots the volume may hold (2–${snapshotCountMax}); 0: the setting snapshot-max-count.` }),
});
export type SnapshotMaxCountInput = Static<typeof SnapshotMaxCountInputSchema>;

export const SnapshotMaxSizeInputSchema = StrictObject({
  snapshotMaxSize: SizeInput,
});
export type SnapshotMaxSizeInput = Static<typeof SnapshotMaxSizeInputSchema>;

export const SalvageInputSchema = StrictObject({
  names: Type.Array(NameRef(), { minItems: 1, maxItems: replicaCountMax * 4, description: 'Replicas to salvage.' }),
});
export type SalvageInput = Static<typeof SalvageInputSchema>;

export const EmptyInputSchema = StrictObject({});

export const ActivateInputSchema = StrictObject({
  frontend: Type.Optional(StringEnum(volumeFrontends, { description: 'How the activated volume is exposed (Longhorn\'s activate input); unchanged when left out.' })),
});
export type ActivateInput = Static<typeof ActivateInputSchema>;

export const volumeActionInputs: Readonly<Record<VolumeActionName, TSchema>> = {
  attach: AttachInputSchema,
  detach: DetachInputSchema,
  salvage: SalvageInputSchema,
  expand: ExpandInputSchema,
  updateReplicaCount: ReplicaCountInputSchema,
  updateSnapshotMaxCount: SnapshotMaxCountInputSchema,
  updateSnapshotMaxSize: SnapshotMaxSizeInputSchema,
  snapshotCreate: SnapshotInputSchema,
  snapshotList: EmptyInputSchema,
  snapshotDelete: SnapshotNameInputSchema,
  snapshotRevert: SnapshotNameInputSchema,
  snapshotPurge: EmptyInputSchema,
  snapshotCheck: EmptyInputSchema,
  recurringJobAdd: RecurringJobInputSchema,
  recurringJobDelete: RecurringJobInputSchema,
  recurringJobList: EmptyInputSchema,
  snapshotBackup: SnapshotBackupInputSchema,
  activate: ActivateInputSchema,
};
