// The registry of resource kinds: everything the store, the API, validation and the CRD
// generator need to know about a kind, so each of them iterates this list instead of naming kinds.
import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import { BackingImageSpecSchema, BackingImageStatusSchema, type BackingImage } from './backing-image.ts';
import { BackupSpecSchema, BackupStatusSchema, type Backup } from './backup.ts';
import { BackupTargetSpecSchema, BackupTargetStatusSchema, backupTargetProblems, type BackupTarget } from './backup-target.ts';
import { BackupVolumeSpecSchema, BackupVolumeStatusSchema, type BackupVolume } from './backup-volume.ts';
import { StrictObject } from './common-schemas.ts';
import { EngineSpecSchema, EngineStatusSchema, type Engine } from './engine.ts';
import { NodeSpecSchema, NodeStatusSchema, nodeProblems, type Node } from './node.ts';
import { apiVersion, ObjectMetaSchema, type Resource } from './object-meta.ts';
import { RecurringJobSpecSchema, RecurringJobStatusSchema, recurringJobProblems, type RecurringJob } from './recurring-job.ts';
import { ReplicaSpecSchema, ReplicaStatusSchema, replicaProblems, type Replica } from './replica.ts';
import type { ResourceProblem } from './resource-problem.ts';
import { SettingSpecSchema, SettingStatusSchema, settingProblems, type SettingResource } from './setting.ts';
import { SnapshotSpecSchema, SnapshotStatusSchema, type Snapshot } from './snapshot.ts';
import { VolumeSpecSchema, VolumeStatusSchema, volumeProblems, type Volume } from './volume.ts';
import {
  VolumeAttachmentSpecSchema,
  VolumeAttachmentStatusSchema,
  volumeAttachmentProblems,
  type VolumeAttachment,
} from './volume-attachment.ts';

/** The Kubernetes API group and version of every kind. */
export const apiGroup = 'shorthorn.io';
export const apiGroupVersion = 'v1';

/** One column of `kubectl get` output (a CRD additionalPrinterColumn). */
export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly jsonPath: string;
  readonly description?: string;
}

export interface KindDefinition<R extends Resource = Resource> {
  readonly kind: R['kind'];
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  /** Namespaced on Kubernetes (all of ours live in the install namespace, as Longhorn's do). */
  readonly namespaced: boolean;
  readonly description: string;
  readonly specSchema: TObject;
  readonly statusSchema: TObject;
  readonly printerColumns: readonly PrinterColumn[];
  /** Rules across fields that a schema cannot express; called only on schema-valid resources. */
  problems?(resource: R): ResourceProblem[];
}

/** Every stored kind by name, with its TypeScript type. */
export interface ResourceByKind {
  Volume: Volume;
  VolumeAttachment: VolumeAttachment;
  Engine: Engine;
  Replica: Replica;
  Node: Node;
  Setting: SettingResource;
  Snapshot: Snapshot;
  Backup: Backup;
  BackupVolume: BackupVolume;
  BackupTarget: BackupTarget;
  RecurringJob: RecurringJob;
  BackingImage: BackingImage;
}
export type KindName = keyof ResourceByKind;

const ageColumn: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const column = (name: string, type: PrinterColumn['type'], jsonPath: string, description?: string): PrinterColumn =>
  description === undefined ? { name, type, jsonPath } : { name, type, jsonPath, description };

export const resourceKinds: { readonly [K in KindName]: KindDefinition<ResourceByKind[K]> } = {
  Volume: {
    kind: 'Volume',
    plural: 'volumes',
    singular: 'volume',
    shortNames: ['shv'],
    namespaced: true,
    description: 'A replicated block device: desired size, replicas and placement rules, and its observed state.',
    specSchema: VolumeSpecSchema,
    statusSchema: VolumeStatusSchema,
    printerColumns: [
      column('State', 'string', '.status.state', 'attached, detached, ...'),
      column('Robustness', 'string', '.status.robustness', 'healthy, degraded, faulted'),
      column('Replicas', 'integer', '.spec.numberOfReplicas'),
      column('Size', 'integer', '.spec.size', 'bytes'),
      column('Node', 'string', '.status.currentNodeID', 'where the engine runs'),
      ageColumn,
    ],
    problems: volumeProblems,
  },
  VolumeAttachment: {
    kind: 'VolumeAttachment',
    plural: 'volumeattachments',
    singular: 'volumeattachment',
    shortNames: ['shva'],
    namespaced: true,
    description: 'Attach requests (tickets) for one volume, named after it.',
    specSchema: VolumeAttachmentSpecSchema,
    statusSchema: VolumeAttachmentStatusSchema,
    printerColumns: [column('Volume', 'string', '.spec.volume'), ageColumn],
    problems: volumeAttachmentProblems,
  },
  Engine: {
    kind: 'Engine',
    plural: 'engines',
    singular: 'engine',
    shortNames: ['she'],
    namespaced: true,
    description: 'The process that serves an attached volume and replicates its writes.',
    specSchema: EngineSpecSchema,
    statusSchema: EngineStatusSchema,
    printerColumns: [
      column('State', 'string', '.status.currentState'),
      column('Node', 'string', '.spec.nodeID'),
      column('Epoch', 'integer', '.spec.epoch'),
      column('Generation', 'integer', '.status.generation', 'write-set generation'),
      ageColumn,
    ],
  },
  Replica: {
    kind: 'Replica',
    plural: 'replicas',
    singular: 'replica',
    shortNames: ['shr'],
    namespaced: true,
    description: 'One copy of a volume\'s data on one disk of one node.',
    specSchema: ReplicaSpecSchema,
    statusSchema: ReplicaStatusSchema,
    printerColumns: [
      column('State', 'string', '.status.currentState'),
      column('Node', 'string', '.spec.nodeID'),
      column('Disk', 'string', '.spec.diskID'),
      column('Failed', 'date', '.spec.failedAt'),
      ageColumn,
    ],
    problems: replicaProblems,
  },
  Node: {
    kind: 'Node',
    plural: 'nodes',
    singular: 'node',
    shortNames: ['shn'],
    namespaced: true,
    description: 'A host that runs replicas and engines: its disks, tags and scheduling switches.',
    specSchema: NodeSpecSchema,
    statusSchema: NodeStatusSchema,
    printerColumns: [
      column('Schedulable', 'boolean', '.spec.allowScheduling'),
      column('Zone', 'string', '.status.zone'),
      ageColumn,
    ],
    problems: nodeProblems,
  },
  Setting: {
    kind: 'Setting',
    plural: 'settings',
    singular: 'setting',
    shortNames: ['shs'],
    namespaced: true,
    description: 'One global setting; the name is the setting, spec.value its value.',
    specSchema: SettingSpecSchema,
    statusSchema: SettingStatusSchema,
    printerColumns: [column('Value', 'string', '.spec.value'), column('Applied', 'boolean', '.status.applied'), ageColumn],
    problems: settingProblems,
  },
  Snapshot: {
    kind: 'Snapshot',
    plural: 'snapshots',
    singular: 'snapshot',
    shortNames: ['shsnap'],
    namespaced: true,
    description: 'A snapshot in a volume\'s chain.',
    specSchema: SnapshotSpecSchema,
    statusSchema: SnapshotStatusSchema,
    printerColumns: [
      column('Volume', 'string', '.spec.volume'),
      column('Created', 'date', '.status.creationTime'),
      column('Ready', 'boolean', '.status.readyToUse'),
      column('Size', 'integer', '.status.size'),
      ageColumn,
    ],
  },
  Backup: {
    kind: 'Backup',
    plural: 'backups',
    singular: 'backup',
    shortNames: ['shb'],
    namespaced: true,
    description: 'A backup of a snapshot in the backup target.',
    specSchema: BackupSpecSchema,
    statusSchema: BackupStatusSchema,
    printerColumns: [
      column('Snapshot', 'string', '.status.snapshotName'),
      column('State', 'string', '.status.state'),
      column('Size', 'integer', '.status.size'),
      column('Created', 'date', '.status.backupCreatedAt'),
      ageColumn,
    ],
  },
  BackupVolume: {
    kind: 'BackupVolume',
    plural: 'backupvolumes',
    singular: 'backupvolume',
    shortNames: ['shbv'],
    namespaced: true,
    description: 'The backups of one volume in the backup target.',
    specSchema: BackupVolumeSpecSchema,
    statusSchema: BackupVolumeStatusSchema,
    printerColumns: [
      column('Last Backup', 'string', '.status.lastBackupName'),
      column('Last Backup At', 'date', '.status.lastBackupAt'),
      ageColumn,
    ],
  },
  BackupTarget: {
    kind: 'BackupTarget',
    plural: 'backuptargets',
    singular: 'backuptarget',
    shortNames: ['shbt'],
    namespaced: true,
    description: 'A backup store: S3, NFS or a directory.',
    specSchema: BackupTargetSpecSchema,
    statusSchema: BackupTargetStatusSchema,
    printerColumns: [
      column('URL', 'string', '.spec.backupTargetURL'),
      column('Available', 'boolean', '.status.available'),
      ageColumn,
    ],
    problems: backupTargetProblems,
  },
  RecurringJob: {
    kind: 'RecurringJob',
    plural: 'recurringjobs',
    singular: 'recurringjob',
    shortNames: ['shrj'],
    namespaced: true,
    description: 'A cron-scheduled snapshot, backup or trim task for volumes chosen by label or group.',
    specSchema: RecurringJobSpecSchema,
    statusSchema: RecurringJobStatusSchema,
    printerColumns: [
      column('Task', 'string', '.spec.task'),
      column('Cron', 'string', '.spec.cron'),
      column('Retain', 'integer', '.spec.retain'),
      ageColumn,
    ],
    problems: recurringJobProblems,
  },
  BackingImage: {
    kind: 'BackingImage',
    plural: 'backingimages',
    singular: 'backingimage',
    shortNames: ['shbi'],
    namespaced: true,
    description: 'A base image that replicas are layered on, kept in copies on several disks.',
    specSchema: BackingImageSpecSchema,
    statusSchema: BackingImageStatusSchema,
    printerColumns: [column('Source', 'string', '.spec.sourceType'), column('Size', 'integer', '.status.size'), ageColumn],
  },
};

export const kindNames = Object.keys(resourceKinds) as KindName[];

export function isKindName(name: string): name is KindName {
  return Object.hasOwn(resourceKinds, name);
}

/** The whole resource (apiVersion, kind, metadata, spec, status) as one schema. */
export function resourceSchema(kind: KindName): TSchema {
  const definition: KindDefinition<Resource> = resourceKinds[kind];
  return StrictObject({
    apiVersion: Type.Literal(apiVersion),
    kind: Type.Literal(definition.kind),
    metadata: ObjectMetaSchema,
    spec: definition.specSchema,
    status: Type.Optional(definition.statusSchema),
  });
}
