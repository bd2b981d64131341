// Snapshot: one snapshot in a volume's chain (reference §1.8). Deleting the resource deletes the
// snapshot; `volume-head` is the live layer and never a Snapshot.
import { Type, type Static } from '@sinclair/typebox';
import { snapshotCountMax } from '../../lib/limits.ts';
import { Bytes, Labels, NameMap, NameRef, OwnerID, StrictObject, Text, Timestamp } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';

export const SnapshotSpecSchema = StrictObject({
  volume: NameRef({ description: 'The volume whose chain holds this snapshot.' }),
  createSnapshot: Type.Boolean({ description: 'True: take it; false: this mirrors a snapshot that already exists.' }),
  labels: Type.Optional(Labels('Labels stored with the snapshot.')),
});
export type SnapshotSpec = Static<typeof SnapshotSpecSchema>;

export const SnapshotStatusSchema = StrictObject({
  ownerID: OwnerID(),
  parent: Type.Optional(Type.String({ maxLength: 63 })),
  children: Type.Optional(NameMap(Type.Boolean(), { maxProperties: snapshotCountMax })),
  markRemoved: Type.Optional(Type.Boolean({ description: 'Deleted; its data is freed by the next purge.' })),
  userCreated: Type.Optional(Type.Boolean({ description: 'False for system snapshots (rebuild, expansion, restore).' })),
  creationTime: Type.Optional(Timestamp()),
  size: Type.Optional(Bytes()),
  restoreSize: Type.Optional(Bytes()),
  labels: Type.Optional(Labels('Labels as stored in the chain.')),
  readyToUse: Type.Optional(Type.Boolean()),
  checksum: Type.Optional(Type.String({ maxLength: 128 })),
  checksumState: Type.Optional(
    Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('computing'), Type.Literal('computed'), Type.Literal('corrupt')], {
      description: "The read source's per-chunk checksums of this snapshot, computed in the background (none, pending, computing, computed, corrupt).",
    }),
  ),
  checksumComputedAt: Type.Optional(Timestamp()),
  error: Type.Optional(Text()),
});
export type SnapshotStatus = Static<typeof SnapshotStatusSchema>;

export type Snapshot = Resource<SnapshotSpec, SnapshotStatus>;
