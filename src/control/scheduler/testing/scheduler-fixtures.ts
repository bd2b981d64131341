// Small builders for scheduler tests: nodes with disks, volumes and replicas with only the fields
// a case cares about. Disk UUIDs are `<node>-<disk>` so expectations read easily.
import type { Node } from '../../resources/node.ts';
import type { Replica } from '../../resources/replica.ts';
import type { Volume, VolumeSpec } from '../../resources/volume.ts';
import { Settings } from '../../settings/settings.ts';
import type { SchedulerSettings, SchedulingInput } from '../replica-scheduler.ts';

export const gib = 1024 ** 3;
export const nowMs = Date.parse('2024-05-01T12:00:00Z');

export function isoAgo(seconds: number): string {
  return new Date(nowMs - seconds * 1000).toISOString();
}

export interface DiskOptions {
  maxGiB?: number;
  availableGiB?: number;
  reservedGiB?: number;
  scheduledGiB?: number;
  scheduledReplica?: Record<string, number>;
  tags?: string[];
  allowScheduling?: boolean;
  evictionRequested?: boolean;
  ready?: boolean;
  schedulable?: { status: 'True' | 'False'; reason?: string };
}

export interface NodeOptions {
  zone?: string;
  ready?: boolean;
  schedulable?: { status: 'True' | 'False'; reason?: string };
  allowScheduling?: boolean;
  evictionRequested?: boolean;
  tags?: string[];
  disks?: Record<string, DiskOptions>;
}

export function node(name: string, options: NodeOptions = {}): Node {
  const disks = options.disks ?? { d1: {} };
  const conditions: { type: string; status: 'True' | 'False'; reason?: string }[] = [
    { type: 'Ready', status: options.ready === false ? 'False' : 'True' },
  ];
  if (options.schedulable !== undefined) conditions.push({ type: 'Schedulable', ...options.schedulable });
  const spec: Node['spec'] = { disks: {}, allowScheduling: options.allowScheduling ?? true, evictionRequested: options.evictionRequested ?? false, tags: options.tags ?? [] };
  const diskStatus: NonNullable<Node['status']>['diskStatus'] = {};
  for (const [diskName, disk] of Object.entries(disks)) {
    spec.disks[diskName] = {
      diskType: 'filesystem',
      path: `/mnt/${name}/${diskName}`,
      allowScheduling: disk.allowScheduling ?? true,
      evictionRequested: disk.evictionRequested ?? false,
      storageReserved: (disk.reservedGiB ?? 0) * gib,
      tags: disk.tags ?? [],
    };
    const diskConditions: { type: string; status: 'True' | 'False'; reason?: string }[] = [
      { type: 'Ready', status: disk.ready === false ? 'False' : 'True' },
    ];
    if (disk.schedulable !== undefined) diskConditions.push({ type: 'Schedulable', ...disk.schedulable });
    diskStatus[diskName] = {
      conditions: diskConditions,
      storageMaximum: (disk.maxGiB ?? 100) * gib,
      storageAvailable: (disk.availableGiB ?? 100) * gib,
      storageScheduled: (disk.scheduledGiB ?? 0) * gib,
      ...(disk.scheduledReplica === undefined ? {} : { scheduledReplica: disk.scheduledReplica }),
      diskUUID: `${name}-${diskName}`,
    };
  }
  return {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Node',
    metadata: { name },
    spec,
    status: { conditions, diskStatus, ...(options.zone === undefined ? {} : { zone: options.zone }) },
  };
}

export interface VolumeOptions extends Partial<VolumeSpec> {
  actualSizeGiB?: number;
  lastDegradedAt?: string;
}

export function volume(options: VolumeOptions = {}): Volume {
  const { actualSizeGiB, lastDegradedAt, ...spec } = options;
  return {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Volume',
    metadata: { name: 'vol' },
    spec: {
      size: 10 * gib,
      numberOfReplicas: 3,
      minimumWriteReplicas: 1,
      frontend: 'blockdev',
      accessMode: 'rwo',
      dataLocality: 'disabled',
      standby: false,
      staleReplicaTimeout: 2880,
      nodeSelector: [],
      diskSelector: [],
      replicaSoftAntiAffinity: 'ignored',
      replicaZoneSoftAntiAffinity: 'ignored',
      replicaDiskSoftAntiAffinity: 'ignored',
      replicaAutoBalance: 'ignored',
      snapshotDataIntegrity: 'ignored',
      unmapMarkSnapChainRemoved: 'ignored',
      freezeFilesystemForSnapshot: 'ignored',
      backupCompressionMethod: 'lz4',
      ...spec,
    },
    status: {
      actualSize: (actualSizeGiB ?? 0) * gib,
      ...(lastDegradedAt === undefined ? {} : { lastDegradedAt }),
    },
  };
}

export interface ReplicaOptions {
  failedAt?: string;
  evictionRequested?: boolean;
  rebuildRetryCount?: number;
  hardNodeAffinity?: string;
  sizeGiB?: number;
}

/** A replica of `vol` on `<nodeID>` disk `<disk>` (UUID `<nodeID>-<disk>`). */
export function replica(name: string, nodeID: string, disk = 'd1', options: ReplicaOptions = {}): Replica {
  return {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Replica',
    metadata: { name },
    spec: {
      volumeName: 'vol',
      volumeSize: (options.sizeGiB ?? 10) * gib,
      nodeID,
      desireState: 'running',
      diskID: `${nodeID}-${disk}`,
      diskPath: `/mnt/${nodeID}/${disk}`,
      active: true,
      rebuildRetryCount: options.rebuildRetryCount ?? 0,
      evictionRequested: options.evictionRequested ?? false,
      ...(options.failedAt === undefined ? {} : { failedAt: options.failedAt, lastFailedAt: options.failedAt }),
      ...(options.hardNodeAffinity === undefined ? {} : { hardNodeAffinity: options.hardNodeAffinity }),
    },
  };
}

export function schedulerSettings(changes: Record<string, string> = {}): SchedulerSettings {
  let settings = Settings.defaults();
  for (const [name, value] of Object.entries(changes)) settings = settings.with(name, value);
  return settings.values;
}

export function input(parts: Partial<SchedulingInput> & { nodes: Node[] }, settings: Record<string, string> = {}): SchedulingInput {
  return { volume: volume(), replicas: [], settings: schedulerSettings(settings), nowMs, ...parts };
}
