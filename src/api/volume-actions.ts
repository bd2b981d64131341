// What each volume action writes. The API only records desired state (Longhorn's way since 1.5):
// attach and detach edit the volume's VolumeAttachment tickets, snapshot actions create and
// delete Snapshot resources or annotate the volume, expand and updateReplicaCount change the
// Volume spec. The manager's controllers act on these writes.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../lib/clock.ts';
import type { Replica } from '../control/resources/replica.ts';
import type { Snapshot } from '../control/resources/snapshot.ts';
import { validateResource } from '../control/resources/validate-resource.ts';
import type { Volume } from '../control/resources/volume.ts';
import type { VolumeAttachment } from '../control/resources/volume-attachment.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { purgeAnnotation, revertAnnotation, snapshotVolumeLabel } from '../control/controllers/snapshot-reconcile.ts';
import { snapshotCheckAnnotation } from '../control/controllers/data-integrity-reconcile.ts';
import { ApiError } from './api-error.ts';
import { snapshotBackup, type BackupAccess } from './backup-routes.ts';
import type { SnapshotBackupInput } from './backup-inputs.ts';
import { restorePending, restoreTicketId } from '../control/backups/restore-reconcile.ts';
import { apiConflictRetriesMax } from '../lib/limits.ts';
import { checkInput } from './input-check.ts';
import { labelProblems } from './label-check.ts';
import {
  collectionView,
  resourceView,
  volumeActions,
  volumeState,
  volumeView,
  type CollectionView,
  type ResourceView,
  type VolumeActionName,
} from './resource-view.ts';
import { parseSizeText } from './size-text.ts';
import { getOrNotFound, listLimited, modifyResource } from './store-access.ts';
import { recurringJobAdd, recurringJobDelete, recurringJobList, type RecurringJobInput, type VolumeRecurringJobList } from './volume-job-actions.ts';
import { activateStandby } from './volume-activate.ts';
import {
  volumeActionInputs,
  type ActivateInput,
  type AttachInput,
  type DetachInput,
  type ExpandInput,
  type ReplicaCountInput,
  type SnapshotMaxCountInput,
  type SnapshotMaxSizeInput,
  type SalvageInput,
  type SnapshotInput,
  type SnapshotNameInput,
} from './volume-inputs.ts';

/** Ticket id of attach calls that name none (Longhorn's UI uses `longhorn-ui`). */
export const defaultAttachmentID = 'shorthorn-ui';
/**
 * The label on Snapshot resources naming their volume (Longhorn's `longhornvolume`) and the volume
 * annotations the snapshot controller acts on (revert, purge): defined once, by the controller.
 */
export { purgeAnnotation, revertAnnotation, snapshotVolumeLabel };

export interface ActionContext {
  readonly store: ResourceStore;
  readonly clock: Clock;
  readonly access?: BackupAccess;
}

export type ActionResult = ResourceView | CollectionView | VolumeRecurringJobList;

export async function runVolumeAction(
  context: ActionContext,
  volumeName: string,
  action: VolumeActionName,
  body: unknown,
): Promise<ActionResult> {
  const volume = await getOrNotFound<Volume>(context.store, 'Volume', volumeName);
  const offered = volumeActions(volume);
  if (!offered.includes(action)) {
    const robustness = volume.status?.robustness === undefined ? '' : `, ${volume.status.robustness}`;
    throw new ApiError(
      'conflict',
      `volume ${volumeName} is ${volumeState(volume)}${robustness}: ${action} is not possible now (possible: ${offered.join(', ')})`,
    );
  }
  const input = checkInput<unknown>(volumeActionInputs[action], body, `${action} input`);
  switch (action) {
    case 'attach':
      return attach(context, volume, input as AttachInput);
    case 'detach':
      return detach(context, volume, input as DetachInput);
    case 'salvage':
      return salvage(context, volume, input as SalvageInput);
    case 'expand':
      return expand(context, volume, input as ExpandInput);
    case 'updateReplicaCount':
      return updateReplicaCount(context, volume, input as ReplicaCountInput);
    case 'updateSnapshotMaxCount':
      return updateSnapshotMaxCount(context, volume, input as SnapshotMaxCountInput);
    case 'updateSnapshotMaxSize':
      return updateSnapshotMaxSize(context, volume, input as SnapshotMaxSizeInput);
    case 'snapshotCreate':
      return snapshotCreate(context, volume, input as SnapshotInput);
    case 'snapshotList':
      return snapshotList(context, volume);
    case 'snapshotDelete':
      return snapshotDelete(context, volume, input as SnapshotNameInput);
    case 'snapshotRevert':
      return snapshotRevert(context, volume, input as SnapshotNameInput);
    case 'snapshotPurge':
      return snapshotPurge(context, volume);
    case 'snapshotCheck':
      return snapshotCheck(context, volume);
    case 'recurringJobAdd':
      return recurringJobAdd(context.store, volume, input as RecurringJobInput);
    case 'recurringJobDelete':
      return recurringJobDelete(context.store, volume, input as RecurringJobInput);
    case 'recurringJobList':
      return recurringJobList(volume);
    case 'snapshotBackup':
      return snapshotBackup(context, volume, input as SnapshotBackupInput);
    case 'activate':
      return activateStandby(context, volume, input as ActivateInput);
    default: {
      const unknown: never = action;
      throw new ApiError('bad_request', `unknown action ${String(unknown)}`);
    }
  }
}

async function attach(context: ActionContext, volume: Volume, input: AttachInput): Promise<ResourceView> {
  const { store } = context;
  const name = volume.metadata.name;
  try {
    await store.get('Node', input.hostId);
  } catch (error) {
    if (!isStoreError(error, 'not_found')) throw error;
    throw ApiError.invalid('attach input', [{ path: 'hostId', reason: `there is no node named ${input.hostId}; GET /v1/nodes lists them` }]);
  }
  const id = input.attachmentID ?? defaultAttachmentID;
  if (restorePending(volume) && id !== restoreTicketId(name)) {
    throw new ApiError('conflict', `volume ${name} is being restored from ${volume.spec.fromBackup ?? 'a backup'}; attach it once the restore has finished (status.restoreRequired false)`);
  }
  const ticket = {
    id,
    type: input.attacherType ?? 'shorthorn-api',
    nodeID: input.hostId,
    parameters: {
      disableFrontend: input.disableFrontend ?? false,
      ...(input.attachedBy === undefined ? {} : { lastAttachedBy: input.attachedBy }),
    },
  } as const;
  await changeTickets(store, name, (tickets) => {
    if (volume.spec.accessMode === 'rwo') {
      for (const other of Object.values(tickets)) {
        if (other.nodeID !== input.hostId) {
          throw new ApiError(
            'conflict',
            `volume ${name} is attached (or attaching) to node ${other.nodeID} by ticket ${other.id}; ` +
              `it is read-write-once, so detach it there first`,
          );
        }
      }
    }
    const existing = tickets[id];
    if (existing !== undefined && JSON.stringify({ ...existing, generation: undefined }) === JSON.stringify({ ...ticket, generation: undefined })) {
      return null;
    }
    return { ...tickets, [id]: { ...ticket, generation: (existing?.generation ?? 0) + 1 } };
  });
  return volumeView(await getOrNotFound<Volume>(store, 'Volume', name));
}

async function detach(context: ActionContext, volume: Volume, input: DetachInput): Promise<ResourceView> {
  const { store } = context;
  const name = volume.metadata.name;
  await changeTickets(store, name, (tickets) => {
    if (input.forceDetach === true) return Object.keys(tickets).length === 0 ? null : {};
    const id = input.attachmentID ?? defaultAttachmentID;
    const ticket = tickets[id];
    if (ticket === undefined) return null; // detaching what is not attached is done already
    if (input.hostId !== undefined && ticket.nodeID !== input.hostId) {
      throw new ApiError('conflict', `ticket ${id} of volume ${name} is for node ${ticket.nodeID}, not ${input.hostId}`);
    }
    const rest = { ...tickets };
    delete rest[id];
    return rest;
  });
  return volumeView(await getOrNotFound<Volume>(store, 'Volume', name));
}

type Tickets = VolumeAttachment['spec']['attachmentTickets'];

/** Change the tickets of a volume's VolumeAttachment, creating it on first use; null: no change. */
async function changeTickets(store: ResourceStore, volumeName: string, change: (tickets: Tickets) => Tickets | null): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let current: VolumeAttachment | undefined;
    try {
      current = (await store.get('VolumeAttachment', volumeName)) as VolumeAttachment;
    } catch (error) {
      if (!isStoreError(error, 'not_found')) throw error;
    }
    const tickets = change(structuredClone(current?.spec.attachmentTickets ?? {}));
    if (tickets === null) return;
    const next: VolumeAttachment =
      current === undefined
        ? {
            apiVersion: 'shorthorn.io/v1',
            kind: 'VolumeAttachment',
            metadata: { name: volumeName },
            spec: { volume: volumeName, attachmentTickets: tickets },
          }
        : { ...current, spec: { ...current.spec, attachmentTickets: tickets } };
    const checked = validateResource('VolumeAttachment', next);
    if (!checked.ok) throw ApiError.invalid('attachment', checked.problems);
    try {
      if (current === undefined) await store.create(next);
      else await store.update(next);
      return;
    } catch (error) {
      const raced = isStoreError(error, 'conflict') || isStoreError(error, 'already_exists');
      if (!raced || attempt >= apiConflictRetriesMax) throw error;
    }
  }
}

/** Write a changed volume spec after checking the whole volume against its schema and rules. */
async function changeVolume(context: ActionContext, name: string, change: (volume: Volume) => Volume | null): Promise<ResourceView> {
  const stored = await modifyResource<Volume>(context.store, 'Volume', name, (current) => {
    const next = change(current);
    if (next === null) return null;
    const checked = validateResource('Volume', next);
    if (!checked.ok) throw ApiError.invalid(`volume ${name}`, checked.problems);
    return next;
  });
  return volumeView(stored);
}

async function expand(context: ActionContext, volume: Volume, input: ExpandInput): Promise<ResourceView> {
  const size = parseSizeText(input.size);
  if (typeof size === 'string') throw ApiError.invalid('expand input', [{ path: 'size', reason: size }]);
  return changeVolume(context, volume.metadata.name, (current) => {
    if (size < current.spec.size) {
      throw ApiError.invalid('expand input', [
        { path: 'size', reason: `${size} bytes is smaller than the volume (${current.spec.size} bytes); volumes cannot shrink` },
      ]);
    }
    if (size === current.spec.size) return null;
    return { ...current, spec: { ...current.spec, size } };
  });
}

async function updateReplicaCount(context: ActionContext, volume: Volume, input: ReplicaCountInput): Promise<ResourceView> {
  return changeVolume(context, volume.metadata.name, (current) =>
    current.spec.numberOfReplicas === input.replicaCount ? null : { ...current, spec: { ...current.spec, numberOfReplicas: input.replicaCount } },
  );
}

/**
 * Longhorn's updateSnapshotMaxCount: 0 leaves the volume to the setting snapshot-max-count; 1 is
 * refused (a rebuild needs room for its own snapshot). The volume controller gives the engine the
 * new limit and the node agent sets it on the running engine, without a restart.
 */
async function updateSnapshotMaxCount(context: ActionContext, volume: Volume, input: SnapshotMaxCountInput): Promise<ResourceView> {
  if (input.snapshotMaxCount === 1) {
    throw ApiError.invalid('updateSnapshotMaxCount input', [{ path: 'snapshotMaxCount', reason: 'at least 2 (a rebuild takes a snapshot of its own), or 0 for the setting snapshot-max-count' }]);
  }
  return changeVolume(context, volume.metadata.name, (current) => {
    const { snapshotMaxCount: old, ...rest } = current.spec;
    if ((old ?? 0) === input.snapshotMaxCount) return null;
    return { ...current, spec: input.snapshotMaxCount === 0 ? rest : { ...rest, snapshotMaxCount: input.snapshotMaxCount } };
  });
}

/** Longhorn's updateSnapshotMaxSize: bytes all snapshots may hold together; 0 is no limit. */
async function updateSnapshotMaxSize(context: ActionContext, volume: Volume, input: SnapshotMaxSizeInput): Promise<ResourceView> {
  const size = parseSizeText(input.snapshotMaxSize);
  if (typeof size === 'string') throw ApiError.invalid('updateSnapshotMaxSize input', [{ path: 'snapshotMaxSize', reason: size }]);
  return changeVolume(context, volume.metadata.name, (current) => {
    const { snapshotMaxSize: old, ...rest } = current.spec;
    if ((old ?? 0) === size) return null;
    return { ...current, spec: size === 0 ? rest : { ...rest, snapshotMaxSize: size } };
  });
}

async function salvage(context: ActionContext, volume: Volume, input: SalvageInput): Promise<ResourceView> {
  const name = volume.metadata.name;
  for (const replicaName of new Set(input.names)) {
    await modifyResource<Replica>(context.store, 'Replica', replicaName, (replica) => {
      if (replica.spec.volumeName !== name) {
        throw ApiError.invalid('salvage input', [{ path: 'names', reason: `replica ${replicaName} belongs to volume ${replica.spec.volumeName}, not ${name}` }]);
      }
      return replica.spec.salvageRequested === true ? null : { ...replica, spec: { ...replica.spec, salvageRequested: true } };
    });
  }
  return volumeView(await getOrNotFound<Volume>(context.store, 'Volume', name));
}

async function snapshotCreate(context: ActionContext, volume: Volume, input: SnapshotInput): Promise<ResourceView> {
  const name = input.name ?? randomUUID();
  const badLabels = labelProblems(input.labels, 'labels');
  if (badLabels.length > 0) throw ApiError.invalid('snapshot', badLabels);
  const snapshot: Snapshot = {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Snapshot',
    metadata: { name, labels: { [snapshotVolumeLabel]: volume.metadata.name } },
    spec: { volume: volume.metadata.name, createSnapshot: true, labels: input.labels ?? {} },
  };
  const checked = validateResource('Snapshot', snapshot);
  if (!checked.ok) throw ApiError.invalid('snapshot', checked.problems);
  try {
    return resourceView('snapshots', await context.store.create(snapshot));
  } catch (error) {
    if (isStoreError(error, 'already_exists')) {
      throw new ApiError('already_exists', `a snapshot named ${name} exists already; choose another name`, { cause: error });
    }
    throw error;
  }
}

async function snapshotList(context: ActionContext, volume: Volume): Promise<CollectionView> {
  const { items, truncated } = await listLimited<Snapshot>(context.store, 'Snapshot', (s) => s.spec.volume === volume.metadata.name);
  return collectionView('snapshots', 'snapshot', items.map((s) => resourceView('snapshots', s)), truncated);
}

async function snapshotOf(context: ActionContext, volume: Volume, name: string): Promise<Snapshot> {
  const snapshot = await getOrNotFound<Snapshot>(context.store, 'Snapshot', name);
  if (snapshot.spec.volume !== volume.metadata.name) {
    throw new ApiError('not_found', `volume ${volume.metadata.name} has no snapshot named ${name} (it belongs to volume ${snapshot.spec.volume})`);
  }
  return snapshot;
}

async function snapshotDelete(context: ActionContext, volume: Volume, input: SnapshotNameInput): Promise<ResourceView> {
  await snapshotOf(context, volume, input.name);
  return resourceView('snapshots', await context.store.delete('Snapshot', input.name));
}

async function snapshotRevert(context: ActionContext, volume: Volume, input: SnapshotNameInput): Promise<ResourceView> {
  const snapshot = await snapshotOf(context, volume, input.name);
  if (snapshot.status?.markRemoved === true) throw new ApiError('conflict', `snapshot ${input.name} was deleted; it cannot be reverted to`);
  // The volume must be attached (see volumeActions) with no NBD client connected: the engine
  // refuses a revert while one is, so no client sees its data change under it (an engine attached
  // in maintenance mode, disableFrontend, has no NBD listener at all). The manager checks the
  // snapshot against the engine's chain and reports the outcome in the volume's SnapshotRevert
  // condition (docs/manager.md).
  return changeVolume(context, volume.metadata.name, (current) => ({
    ...current,
    metadata: { ...current.metadata, annotations: { ...current.metadata.annotations, [revertAnnotation]: input.name } },
  }));
}

async function snapshotPurge(context: ActionContext, volume: Volume): Promise<ResourceView> {
  const now = new Date(context.clock.nowMs()).toISOString();
  return changeVolume(context, volume.metadata.name, (current) => ({
    ...current,
    metadata: { ...current.metadata, annotations: { ...current.metadata.annotations, [purgeAnnotation]: now } },
  }));
}

/**
 * A data-integrity check of the volume now (a Shorthorn action; Longhorn only has the cron): the
 * annotation records the request time and the manager's data-integrity controller runs a full
 * check (every replica's data against its own checksums, and the checksums across replicas) and
 * reports it in status.dataIntegrity, lastRequest naming this request.
 */
async function snapshotCheck(context: ActionContext, volume: Volume): Promise<ResourceView> {
  const now = new Date(context.clock.nowMs()).toISOString();
  return changeVolume(context, volume.metadata.name, (current) => ({
    ...current,
    metadata: { ...current.metadata, annotations: { ...current.metadata.annotations, [snapshotCheckAnnotation]: now } },
  }));
}
