// Volume: a replicated block device. Spec is what the user asked for, status what the volume
// controller observed (Longhorn's Volume, reference §1.2), plus Shorthorn's minimumWriteReplicas
// and write-set generation (DESIGN §3.3).
import { Type, type Static } from '@sinclair/typebox';
import { blockSizeBytes, replicaCountMax, snapshotCountMax, urlLengthMax, volumeNameLengthMax, volumeSizeMaxBytes } from '../../lib/limits.ts';
import { Bytes, Conditions, NameRef, OwnerID, StrictObject, StringEnum, Tags, Text, Timestamp } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';
import type { ResourceProblem } from './resource-problem.ts';

export const volumeFrontends = ['blockdev', 'nbd', 'iscsi'] as const;
export type VolumeFrontend = (typeof volumeFrontends)[number];
export const accessModes = ['rwo', 'rwx'] as const;
export type AccessMode = (typeof accessModes)[number];
export const dataLocalities = ['disabled', 'best-effort', 'strict-local'] as const;
export type DataLocality = (typeof dataLocalities)[number];
/** Per-volume override of a boolean setting: `ignored` follows the global setting. */
export const settingOverrides = ['ignored', 'enabled', 'disabled'] as const;
export type SettingOverride = (typeof settingOverrides)[number];
export const replicaAutoBalanceModes = ['ignored', 'disabled', 'least-effort', 'best-effort'] as const;
export type ReplicaAutoBalanceMode = (typeof replicaAutoBalanceModes)[number];
export const snapshotDataIntegrityModes = ['ignored', 'disabled', 'enabled', 'fast-check'] as const;
export type SnapshotDataIntegrityMode = (typeof snapshotDataIntegrityModes)[number];
export const backupCompressionMethods = ['none', 'lz4', 'gzip'] as const;
export type BackupCompressionMethod = (typeof backupCompressionMethods)[number];
export const volumeStates = ['creating', 'attached', 'detached', 'attaching', 'detaching', 'deleting'] as const;
export type VolumeState = (typeof volumeStates)[number];
export const volumeRobustnesses = ['healthy', 'degraded', 'faulted', 'unknown'] as const;
export type VolumeRobustness = (typeof volumeRobustnesses)[number];

const ReplicaCount = (description: string, defaultValue?: number) =>
  Type.Integer({ minimum: 1, maximum: replicaCountMax, description, ...(defaultValue === undefined ? {} : { default: defaultValue }) });

export const VolumeSpecSchema = StrictObject({
  size: Type.Integer({
    minimum: blockSizeBytes,
    maximum: volumeSizeMaxBytes,
    multipleOf: blockSizeBytes,
    unit: 'bytes',
    description: 'Size in bytes: a multiple of 4096, at most 64 TiB.',
  }),
  numberOfReplicas: ReplicaCount('Desired number of replicas (the API fills in default-replica-count).'),
  minimumWriteReplicas: ReplicaCount('Writes fail rather than be acknowledged by fewer replicas than this (1 is Longhorn behaviour).', 1),
  frontend: StringEnum(volumeFrontends, { default: 'blockdev', description: 'How the engine exposes the volume: a block device, a bare NBD export, or iSCSI.' }),
  disableFrontend: Type.Optional(Type.Boolean({ description: 'Maintenance mode: the engine runs without exposing the volume.' })),
  nodeID: Type.Optional(NameRef({ description: 'Where the engine should run; written by the attachment controller, not by users.' })),
  lastAttachedBy: Type.Optional(Type.String({ maxLength: 253 })),
  accessMode: StringEnum(accessModes, { default: 'rwo', description: 'rwo: one node at a time; rwx: shared through an NFS share manager.' }),
  dataLocality: StringEnum(dataLocalities, { default: 'disabled', description: 'Keep a replica on the node the volume is attached to.' }),
  fromBackup: Type.Optional(Type.String({ maxLength: urlLengthMax, description: 'Backup URL to restore the volume from when it is created.' })),
  dataSource: Type.Optional(
    Type.String({
      maxLength: 200,
      pattern: '^(vol://[a-z0-9]([-a-z0-9]*[a-z0-9])?|snap://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?)$',
      description: 'Clone source: vol://<volume> or snap://<volume>/<snapshot>.',
    }),
  ),
  standby: Type.Boolean({ default: false, description: 'Disaster-recovery volume: keeps restoring new backups of fromBackup until activated.' }),
  staleReplicaTimeout: Type.Integer({
    minimum: 0,
    maximum: 525_600,
    default: 2880,
    unit: 'minutes',
    description: 'A failed replica is deleted after this many minutes (0: never).',
  }),
  backingImage: Type.Optional(NameRef({ description: 'BackingImage the replicas are layered on.' })),
  nodeSelector: Tags('Node tags a replica\'s node must all have.'),
  diskSelector: Tags('Disk tags a replica\'s disk must all have.'),
  replicaSoftAntiAffinity: StringEnum(settingOverrides, { default: 'ignored', description: 'Override of replica-soft-anti-affinity (node).' }),
  replicaZoneSoftAntiAffinity: StringEnum(settingOverrides, { default: 'ignored', description: 'Override of replica-zone-soft-anti-affinity.' }),
  replicaDiskSoftAntiAffinity: StringEnum(settingOverrides, { default: 'ignored', description: 'Override of replica-disk-soft-anti-affinity.' }),
  replicaAutoBalance: StringEnum(replicaAutoBalanceModes, { default: 'ignored', description: 'Override of replica-auto-balance.' }),
  snapshotDataIntegrity: StringEnum(snapshotDataIntegrityModes, { default: 'ignored', description: 'Override of snapshot-data-integrity.' }),
  unmapMarkSnapChainRemoved: StringEnum(settingOverrides, { default: 'ignored', description: 'Override of remove-snapshots-during-filesystem-trim.' }),
  freezeFilesystemForSnapshot: StringEnum(settingOverrides, { default: 'ignored', description: 'Override of freeze-filesystem-for-snapshot.' }),
  backupCompressionMethod: StringEnum(backupCompressionMethods, { default: 'lz4', description: 'Compression of this volume\'s backup blocks.' }),
  snapshotMaxCount: Type.Optional(Type.Integer({ minimum: 2, maximum: snapshotCountMax, description: 'Snapshot limit; unset: snapshot-max-count.' })),
  snapshotMaxSize: Type.Optional(Bytes({ description: 'Total size of snapshots allowed; unset or 0: no limit.' })),
});
export type VolumeSpec = Static<typeof VolumeSpecSchema>;

export const VolumeStatusSchema = StrictObject({
  ownerID: OwnerID(),
  state: Type.Optional(StringEnum(volumeStates)),
  robustness: Type.Optional(StringEnum(volumeRobustnesses)),
  currentNodeID: Type.Optional(NameRef({ description: 'Node where the engine runs now.' })),
  conditions: Type.Optional(Conditions()),
  actualSize: Type.Optional(Bytes({ description: 'Bytes used by the volume\'s snapshots and head.' })),
  generation: Type.Optional(
    Type.Integer({ minimum: 0, description: 'Highest write-set generation the engine recorded (DESIGN §3.3); not metadata.generation.' }),
  ),
  lastDegradedAt: Type.Optional(Timestamp({ description: 'Start of the current degraded period; replenishment waits from here.' })),
  lastBackup: Type.Optional(Type.String({ maxLength: 253 })),
  lastBackupAt: Type.Optional(Timestamp()),
  restoreRequired: Type.Optional(Type.Boolean()),
  restoreInitiated: Type.Optional(Type.Boolean()),
  isStandby: Type.Optional(Type.Boolean()),
  lastRestoredBackup: Type.Optional(
    Type.String({ maxLength: 253, description: 'The backup the volume holds completely (a DR volume); advances only when a restore has completed.' }),
  ),
  lastRestoredBackupAt: Type.Optional(Timestamp({ description: 'When lastRestoredBackup was taken (its snapshot time in the target).' })),
  restoringBackup: Type.Optional(
    Type.String({ maxLength: 253, description: 'The backup a restore is writing now; kept until it completes, so a crash resumes it from lastRestoredBackup.' }),
  ),
  restoreProgress: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'Percent of restoringBackup written.' })),
  restoreLagSeconds: Type.Optional(
    Type.Integer({ minimum: 0, description: 'A DR volume\'s lag: from lastRestoredBackupAt to the newest backup in the target (lastBackupAt).' }),
  ),
  lastRestore: Type.Optional(
    StrictObject({
      backupName: Type.String({ maxLength: 253 }),
      fromBackupName: Type.Optional(Type.String({ maxLength: 253 })),
      mode: StringEnum(['full', 'incremental'] as const),
      blocksFetched: Type.Integer({ minimum: 0, description: 'Backup blocks written with data.' }),
      blocksZeroed: Type.Integer({ minimum: 0, description: 'Backup blocks written as zeros (in the old backup, not the new).' }),
      finishedAt: Timestamp(),
    }, { description: 'What the last completed restore wrote.' }),
  ),
  expansionRequired: Type.Optional(Type.Boolean({ description: 'spec.size is above the engine\'s size: an online expansion is due (done once attached).' })),
  currentSize: Type.Optional(Bytes({ description: 'Size the volume\'s engine and replicas have now; reaches spec.size by expansion.' })),
  frontendDisabled: Type.Optional(Type.Boolean()),
  remountRequestedAt: Type.Optional(Timestamp()),
  dataIntegrity: Type.Optional(
    StrictObject({
      lastScheduledAt: Type.Optional(Timestamp({ description: 'Cron slot of snapshot-data-integrity-cronjob the last scheduled check covered; a slot is checked once.' })),
      lastRequest: Type.Optional(Type.String({ maxLength: 64, description: 'The snapshotCheck request (annotation value) last acted on.' })),
      nextCheckAt: Type.Optional(Timestamp({ description: 'When the next scheduled check is due.' })),
      lastCheckAt: Type.Optional(Timestamp({ description: 'When the last check finished.' })),
      lastCheckTrigger: Type.Optional(StringEnum(['schedule', 'request'] as const)),
      lastCheckMode: Type.Optional(StringEnum(['enabled', 'fast-check'] as const, { description: 'enabled: data read against the stored checksums too; fast-check: stored checksums compared across replicas.' })),
      lastCheckResult: Type.Optional(StringEnum(['clean', 'mismatch', 'failed'] as const)),
      mismatchedReplicas: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 2 * replicaCountMax, description: 'Replicas whose checksums or data disagree (by replica name; the address when unknown).' })),
      markedFailed: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 2 * replicaCountMax, description: 'Replicas the check failed (a majority disagreed with them); the volume controller rebuilds them.' })),
      bytesVerified: Type.Optional(Bytes({ description: 'Layer data read by the last check (0 in fast-check).' })),
      chunksChecked: Type.Optional(Type.Integer({ minimum: 0 })),
      message: Type.Optional(Text()),
    }, { description: 'The periodic (and requested) snapshot data-integrity check (docs/manager.md).' }),
  ),
});
export type VolumeStatus = Static<typeof VolumeStatusSchema>;
export type VolumeDataIntegrityStatus = NonNullable<VolumeStatus['dataIntegrity']>;

export type Volume = Resource<VolumeSpec, VolumeStatus>;

/** Rules between fields that a schema cannot say. */
export function volumeProblems(volume: Volume): ResourceProblem[] {
  const problems: ResourceProblem[] = [];
  const { spec } = volume;
  if (volume.metadata.name.length > volumeNameLengthMax) {
    problems.push({
      path: 'metadata.name',
      reason: `volume name is ${volume.metadata.name.length} characters; at most ${volumeNameLengthMax} so that replica and engine names fit`,
    });
  }
  if (spec.minimumWriteReplicas > spec.numberOfReplicas) {
    problems.push({
      path: 'spec.minimumWriteReplicas',
      reason: `must not exceed numberOfReplicas (${spec.minimumWriteReplicas} > ${spec.numberOfReplicas}), or no write could ever succeed`,
    });
  }
  if (spec.dataLocality === 'strict-local' && spec.numberOfReplicas !== 1) {
    problems.push({ path: 'spec.numberOfReplicas', reason: `must be 1 with dataLocality strict-local (got ${spec.numberOfReplicas})` });
  }
  if (spec.dataLocality === 'strict-local' && spec.accessMode === 'rwx') {
    problems.push({ path: 'spec.accessMode', reason: 'rwx cannot be combined with dataLocality strict-local' });
  }
  if (spec.standby && spec.fromBackup === undefined) {
    problems.push({ path: 'spec.standby', reason: 'a standby (disaster-recovery) volume needs fromBackup' });
  }
  if (spec.fromBackup !== undefined && spec.dataSource !== undefined) {
    problems.push({ path: 'spec.dataSource', reason: 'a volume is restored from a backup or cloned from a data source, not both' });
  }
  return problems;
}
