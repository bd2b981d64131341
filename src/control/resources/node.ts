// Node: the control plane's view of one host, with its disks, tags and scheduling switches
// (reference §1.6). Spec is what the user set; status is what the node agent measured.
import { Type, type Static } from '@sinclair/typebox';
import { diskCountMax, orphanReportMax, pathLengthMax } from '../../lib/limits.ts';
import { Bytes, Conditions, NameMap, StrictObject, StringEnum, Tags } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';
import type { ResourceProblem } from './resource-problem.ts';

export const diskTypes = ['filesystem'] as const;
export type DiskType = (typeof diskTypes)[number];

/** Condition types the node controller and node agent write. */
export const NodeConditionType = { ready: 'Ready', schedulable: 'Schedulable' } as const;
/** Why a node's Schedulable condition is False because it is cordoned (Kubernetes). */
export const cordonedReason = 'KubernetesNodeCordoned';
/** Why a disk's Schedulable condition is False because it is too full. */
export const diskPressureReason = 'DiskPressure';

export const DiskSpecSchema = StrictObject({
  diskType: StringEnum(diskTypes, { default: 'filesystem', description: 'A directory on a mounted filesystem.' }),
  path: Type.String({ minLength: 1, maxLength: pathLengthMax, pattern: '^/', description: 'Absolute path of the disk directory.' }),
  allowScheduling: Type.Boolean({ default: true, description: 'New replicas may be placed on this disk.' }),
  evictionRequested: Type.Boolean({ default: false, description: 'Move every replica off this disk.' }),
  storageReserved: Bytes({ default: 0, description: 'Bytes withheld from scheduling (for other users of the filesystem).' }),
  tags: Tags('Disk tags that volume disk selectors match.'),
});
export type DiskSpec = Static<typeof DiskSpecSchema>;

export const DiskStatusSchema = StrictObject({
  conditions: Type.Optional(Conditions()),
  storageAvailable: Bytes({ description: 'Free bytes on the filesystem.' }),
  storageMaximum: Bytes({ description: 'Size of the filesystem.' }),
  storageScheduled: Bytes({ description: 'Sum of the nominal sizes of the replicas on this disk.' }),
  scheduledReplica: Type.Optional(
    NameMap(Bytes(), { maxProperties: 100_000, description: 'Replicas counted in storageScheduled, with their sizes.' }),
  ),
  diskUUID: Type.String({ minLength: 1, maxLength: 64, description: 'Identity written into the disk directory; survives path changes.' }),
  diskPath: Type.Optional(Type.String({ maxLength: pathLengthMax })),
  filesystemType: Type.Optional(Type.String({ maxLength: 64 })),
  orphanedReplicaDirectories: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
      maxItems: orphanReportMax,
      description: 'Replica directories under <path>/replicas that no Replica resource owns; reported, never deleted by the agent (Shorthorn: Longhorn makes Orphan resources).',
    }),
  ),
});
export type DiskStatus = Static<typeof DiskStatusSchema>;

/** Disk names: like resource names but allow what Longhorn generates (`default-disk-<hex>`). */
const diskNamePattern = '^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$';

export const NodeSpecSchema = StrictObject({
  disks: NameMap(DiskSpecSchema, { keyPattern: diskNamePattern, maxProperties: diskCountMax, description: 'Disks by name.' }),
  allowScheduling: Type.Boolean({ default: true, description: 'New replicas may be placed on this node.' }),
  evictionRequested: Type.Boolean({ default: false, description: 'Move every replica off this node.' }),
  tags: Tags('Node tags that volume node selectors match.'),
});
export type NodeSpec = Static<typeof NodeSpecSchema>;

export const NodeStatusSchema = StrictObject({
  conditions: Type.Optional(Conditions()),
  diskStatus: Type.Optional(NameMap(DiskStatusSchema, { keyPattern: diskNamePattern, maxProperties: diskCountMax })),
  region: Type.Optional(Type.String({ maxLength: 63 })),
  zone: Type.Optional(Type.String({ maxLength: 63, description: 'Failure zone; nodes without one form one zone together.' })),
});
export type NodeStatus = Static<typeof NodeStatusSchema>;

export type Node = Resource<NodeSpec, NodeStatus>;

export function nodeProblems(node: Node): ResourceProblem[] {
  const problems: ResourceProblem[] = [];
  const paths = new Map<string, string>();
  for (const [name, disk] of Object.entries(node.spec.disks)) {
    if (disk.path.split('/').includes('..')) problems.push({ path: `spec.disks.${name}.path`, reason: "must not contain '..'" });
    const other = paths.get(disk.path);
    if (other !== undefined) problems.push({ path: `spec.disks.${name}.path`, reason: `same path as disk ${other}` });
    paths.set(disk.path, name);
  }
  return problems;
}
