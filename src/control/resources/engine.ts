// Engine: the one process per attached volume that serves the frontend and replicates writes
// (reference §1.4). Adds the fencing epoch (DESIGN §2.2, §3.3) and the recorded write-set generation.
import { Type, type Static } from '@sinclair/typebox';
import { replicaCountMax, snapshotCountMax } from '../../lib/limits.ts';
import { Bytes, NameMap, NameRef, StrictObject, StringEnum, Text, Timestamp } from './common-schemas.ts';
import { instanceSpecProperties, instanceStatusProperties } from './instance.ts';
import type { Resource } from './object-meta.ts';
import { volumeFrontends } from './volume.ts';

export const replicaModes = ['RW', 'WO', 'ERR'] as const;
export type ReplicaMode = (typeof replicaModes)[number];

/** `host:port` or `unix:/path` of a replica as the engine dials it. */
const ReplicaAddress = () => Type.String({ minLength: 1, maxLength: 256, description: 'host:port or unix:/path of the replica.' });
/** Replica maps hold the desired replicas plus ones being added or removed. */
const replicaMapMax = 2 * replicaCountMax;

export const EngineSpecSchema = StrictObject({
  ...instanceSpecProperties,
  frontend: StringEnum(volumeFrontends, { default: 'blockdev' }),
  disableFrontend: Type.Optional(Type.Boolean()),
  epoch: Type.Integer({
    minimum: 0,
    description: 'Fencing epoch, raised on every attach; replicas refuse requests from a lower one.',
  }),
  minimumWriteReplicas: Type.Integer({ minimum: 1, maximum: replicaCountMax, default: 1 }),
  replicaAddressMap: NameMap(ReplicaAddress(), {
    maxProperties: replicaMapMax,
    description: 'Desired write set: replica name to address.',
  }),
  active: Type.Boolean({ default: true, description: 'False for a leftover engine during a move.' }),
  requestedBackupRestore: Type.Optional(Type.String({ maxLength: 253, description: 'Backup to restore next (restore and DR volumes).' })),
  backupVolume: Type.Optional(NameRef()),
  snapshotMaxCount: Type.Optional(Type.Integer({ minimum: 2, maximum: snapshotCountMax })),
  snapshotMaxSize: Type.Optional(Bytes()),
});
export type EngineSpec = Static<typeof EngineSpecSchema>;

export const RebuildStatusSchema = StrictObject({
  isRebuilding: Type.Boolean(),
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  state: Type.Optional(Type.String({ maxLength: 64 })),
  error: Type.Optional(Text()),
  fromReplicaAddress: Type.Optional(ReplicaAddress()),
});

export const EngineStatusSchema = StrictObject({
  ...instanceStatusProperties,
  currentSize: Type.Optional(Bytes()),
  currentReplicaAddressMap: Type.Optional(NameMap(ReplicaAddress(), { maxProperties: replicaMapMax })),
  replicaModeMap: Type.Optional(
    NameMap(StringEnum(replicaModes), { maxProperties: replicaMapMax, description: 'Mode of each replica: RW, WO (rebuilding) or ERR.' }),
  ),
  generation: Type.Optional(Type.Integer({ minimum: 0, description: 'Write-set generation the engine last recorded on its replicas.' })),
  endpoint: Type.Optional(Type.String({ maxLength: 4096, description: 'Device path or NBD URI the volume is exposed at.' })),
  lastRestoredBackup: Type.Optional(Type.String({ maxLength: 253 })),
  rebuildStatus: Type.Optional(NameMap(RebuildStatusSchema, { maxProperties: replicaMapMax, description: 'By replica name.' })),
  isExpanding: Type.Optional(Type.Boolean()),
  lastExpansionError: Type.Optional(Text()),
  lastExpansionFailedAt: Type.Optional(Timestamp()),
});
export type EngineStatus = Static<typeof EngineStatusSchema>;

export type Engine = Resource<EngineSpec, EngineStatus>;
