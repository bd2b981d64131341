// The API's resources as the UI reads them: the envelope of src/api/resource-view.ts around the
// spec and status types of src/control/resources, so the UI is typed against the same schemas
// the server validates with.
import type { ResourceView } from '../../src/api/resource-view.ts';
import type { EngineSpec, EngineStatus } from '../../src/control/resources/engine.ts';
import type { NodeSpec, NodeStatus } from '../../src/control/resources/node.ts';
import type { ReplicaSpec, ReplicaStatus } from '../../src/control/resources/replica.ts';
import type { SnapshotSpec, SnapshotStatus } from '../../src/control/resources/snapshot.ts';
import type { VolumeSpec, VolumeStatus } from '../../src/control/resources/volume.ts';

type View<S, T> = ResourceView & { readonly spec: S; readonly status?: T };

export type VolumeView = View<VolumeSpec, VolumeStatus>;
export type ReplicaView = View<ReplicaSpec, ReplicaStatus>;
export type EngineView = View<EngineSpec, EngineStatus>;
export type NodeView = View<NodeSpec, NodeStatus>;
export type SnapshotView = View<SnapshotSpec, SnapshotStatus>;

export interface SettingView extends ResourceView {
  readonly name: string;
  readonly value: string;
  readonly definition: {
    readonly description: string;
    readonly category: string;
    readonly type: 'bool' | 'int' | 'string' | 'enum';
    readonly readOnly: boolean;
    readonly default: string;
    readonly options?: readonly string[];
    readonly range?: { readonly min: number; readonly max: number };
    readonly unit?: string;
  };
}

/** The state the API reasons about: 'creating' until the controller has written one. */
export function volumeState(volume: VolumeView): string {
  if (volume.metadata.deletionTimestamp !== undefined) return 'deleting';
  return volume.status?.state ?? 'creating';
}
