// How a resource looks on the wire: Longhorn's (Rancher API v1) envelope — `id`, `type`, `links`
// and the `actions` offered in the resource's present state — around our Kubernetes-shaped
// object (metadata, spec, status). URLs are relative to the server, so a proxy in front of it
// needs no rewriting and no request header is ever echoed back.
import type { Resource } from '../control/resources/object-meta.ts';
import type { Volume } from '../control/resources/volume.ts';

export interface ResourceView {
  readonly id: string;
  readonly type: string;
  readonly links: Readonly<Record<string, string>>;
  readonly actions: Readonly<Record<string, string>>;
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: Resource['metadata'];
  readonly spec: unknown;
  readonly status?: unknown;
}

export interface CollectionView {
  readonly type: 'collection';
  readonly resourceType: string;
  readonly links: Readonly<Record<string, string>>;
  readonly data: readonly ResourceView[];
  /** True when the store held more than the API returns in one response. */
  readonly truncated: boolean;
}

export const volumeActionNames = [
  'attach',
  'detach',
  'salvage',
  'expand',
  'updateReplicaCount',
  'updateSnapshotMaxCount',
  'updateSnapshotMaxSize',
  'snapshotCreate',
  'snapshotList',
  'snapshotDelete',
  'snapshotRevert',
  'snapshotPurge',
  'snapshotCheck',
  'snapshotBackup',
  'recurringJobAdd',
  'recurringJobDelete',
  'recurringJobList',
  'activate',
] as const;
export type VolumeActionName = (typeof volumeActionNames)[number];

export function isVolumeActionName(name: string): name is VolumeActionName {
  return (volumeActionNames as readonly string[]).includes(name);
}

export const nodeActionNames = ['diskUpdate'] as const;
export type NodeActionName = (typeof nodeActionNames)[number];

/** The state the API reasons about: 'creating' until the volume controller has written a state. */
export function volumeState(volume: Volume): string {
  if (volume.metadata.deletionTimestamp !== undefined) return 'deleting';
  return volume.status?.state ?? 'creating';
}

/**
 * The actions a volume offers now (Longhorn's table, reference §4.3): attach and detach always;
 * a faulted volume only salvage besides them; snapshots while attached; size and replica count
 * while not in transition. A volume being deleted offers only detach.
 */
export function volumeActions(volume: Volume): VolumeActionName[] {
  const state = volumeState(volume);
  if (state === 'deleting') return ['detach'];
  // A standby (DR) volume only follows its backups until it is activated (Longhorn refuses
  // snapshots, backups, attach and detach of one); activate again while activating is harmless.
  if (volume.spec.fromBackup !== undefined && (volume.spec.standby || volume.status?.isStandby === true)) return ['activate'];
  if (volume.status?.robustness === 'faulted') return ['attach', 'detach', 'salvage'];
  const actions: VolumeActionName[] = ['attach', 'detach', 'recurringJobAdd', 'recurringJobDelete', 'recurringJobList'];
  if (state === 'creating' || state === 'detached' || state === 'attached') actions.push('expand', 'updateReplicaCount', 'updateSnapshotMaxCount', 'updateSnapshotMaxSize');
  if (state === 'attached') actions.push('snapshotCreate', 'snapshotList', 'snapshotDelete', 'snapshotRevert', 'snapshotPurge', 'snapshotCheck');
  // Longhorn offers it on any volume that is not faulted; the manager waits for the engine.
  actions.push('snapshotBackup');
  return actions;
}

export function resourceView(plural: string, resource: Resource, actions: readonly string[] = []): ResourceView {
  const self = `/v1/${plural}/${resource.metadata.name}`;
  const view: ResourceView = {
    id: resource.metadata.name,
    type: resource.kind.toLowerCase(),
    links: { self },
    actions: Object.fromEntries(actions.map((action) => [action, `${self}?action=${action}`])),
    apiVersion: resource.apiVersion,
    kind: resource.kind,
    metadata: resource.metadata,
    spec: resource.spec,
  };
  return resource.status === undefined ? view : { ...view, status: resource.status };
}

export function volumeView(volume: Volume): ResourceView {
  return resourceView('volumes', volume, volumeActions(volume));
}

export function collectionView(plural: string, resourceType: string, data: readonly ResourceView[], truncated: boolean): CollectionView {
  return { type: 'collection', resourceType, links: { self: `/v1/${plural}` }, data, truncated };
}
