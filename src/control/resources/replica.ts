// Replica: one copy of a volume's data in a directory on one disk of one node (reference §1.5).
// The health timestamps are what make salvage and safe cleanup possible; epoch and generation
// are what the replica last persisted (DESIGN §3.3).
import { Type, type Static } from '@sinclair/typebox';
import { pathLengthMax } from '../../lib/limits.ts';
import { NameRef, StrictObject, Timestamp } from './common-schemas.ts';
import { instanceSpecProperties, instanceStatusProperties } from './instance.ts';
import type { Resource } from './object-meta.ts';
import type { ResourceProblem } from './resource-problem.ts';

/** Longhorn stops reusing a failed replica after this many failed rebuilds. */
export const replicaRebuildRetryMax = 5;

export const ReplicaSpecSchema = StrictObject({
  ...instanceSpecProperties,
  engineName: Type.Optional(NameRef({ description: 'The engine this replica belongs to.' })),
  diskID: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'UUID of the disk, set by the scheduler.' })),
  diskPath: Type.Optional(Type.String({ minLength: 1, maxLength: pathLengthMax })),
  dataDirectoryName: Type.Optional(
    Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63, description: '<volume>-<8 hex>, under the disk path.' }),
  ),
  backingImage: Type.Optional(NameRef()),
  active: Type.Boolean({ default: true, description: 'False for a leftover during a move.' }),
  hardNodeAffinity: Type.Optional(NameRef({ description: 'The replica must be placed on this node (data locality).' })),
  rebuildRetryCount: Type.Integer({ minimum: 0, maximum: 1000, default: 0 }),
  evictionRequested: Type.Boolean({ default: false, description: 'Move this replica away from its node or disk.' }),
  healthyAt: Type.Optional(Timestamp({ description: 'First time it became RW since creation or its last rebuild.' })),
  lastHealthyAt: Type.Optional(Timestamp({ description: 'Last time it became RW; never cleared.' })),
  failedAt: Type.Optional(Timestamp({ description: 'Set when it fails; cleared before a rebuild. Set means failed.' })),
  lastFailedAt: Type.Optional(Timestamp({ description: 'Last time it failed; never cleared.' })),
});
export type ReplicaSpec = Static<typeof ReplicaSpecSchema>;

export const ReplicaStatusSchema = StrictObject({
  ...instanceStatusProperties,
  epoch: Type.Optional(Type.Integer({ minimum: 0, description: 'Highest engine epoch this replica has persisted.' })),
  generation: Type.Optional(Type.Integer({ minimum: 0, description: 'Write-set generation recorded on this replica.' })),
});
export type ReplicaStatus = Static<typeof ReplicaStatusSchema>;

export type Replica = Resource<ReplicaSpec, ReplicaStatus>;

export function replicaProblems(replica: Replica): ResourceProblem[] {
  const problems: ResourceProblem[] = [];
  const { spec } = replica;
  if (spec.diskID !== undefined && (spec.nodeID === undefined || spec.diskPath === undefined)) {
    problems.push({ path: 'spec.diskID', reason: 'a replica placed on a disk needs nodeID and diskPath as well' });
  }
  if (spec.hardNodeAffinity !== undefined && spec.nodeID !== undefined && spec.hardNodeAffinity !== spec.nodeID) {
    problems.push({ path: 'spec.nodeID', reason: `must equal hardNodeAffinity ${JSON.stringify(spec.hardNodeAffinity)}` });
  }
  return problems;
}
