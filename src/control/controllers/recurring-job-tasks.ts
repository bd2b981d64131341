// What one run of a recurring job does to one volume (Longhorn's runner, reference §6.3), as
// writes to the store that the snapshot and backup controllers act on: Snapshot and Backup
// resources created and deleted, the volume's purge annotation set. Each step is idempotent for
// a given (job, run, volume), so a run resumed after a manager crash repeats no work it did.
import type { Clock } from '../../lib/clock.ts';
import { toError } from '../../lib/errors.ts';
import type { Backup } from '../resources/backup.ts';
import { apiVersion } from '../resources/object-meta.ts';
import type { RecurringJob, RecurringJobTask } from '../resources/recurring-job.ts';
import type { Snapshot } from '../resources/snapshot.ts';
import type { Volume } from '../resources/volume.ts';
import {
  artifactJobLabel,
  artifactLabels,
  artifactName,
  artifactVolumeLabel,
  backupModeForRun,
  beyondRetain,
  chainJobLabel,
  ownArtifacts,
  snapshotTime,
  systemSnapshots,
  userSnapshots,
} from '../recurring/job-artifacts.ts';
import type { Timers } from '../runtime/timers.ts';
import { isStoreError, type ResourceStore } from '../store/resource-store.ts';

/** The backup controller's label naming a Backup's volume (src/control/backups/backup-mirror.ts). */
export const backupVolumeLabel = 'shorthorn.io/backup-volume';
/** The volume annotation the snapshot controller purges on (src/api/volume-actions.ts). */
export const purgeAnnotation = 'shorthorn.io/snapshot-purge-requested-at';

export interface TaskContext {
  readonly store: ResourceStore;
  readonly clock: Clock;
  readonly timers: Timers;
  /** How long to wait for a snapshot to be ready or a backup to end. */
  readonly timeoutMs: number;
  readonly pollMs: number;
  /** Aborted when the manager stops: waits end at once and the run is left to be resumed. */
  readonly signal: AbortSignal;
  /** Setting auto-cleanup-recurring-job-backup-snapshot: a backup job keeps only its last snapshot. */
  readonly backupSnapshotCleanup: () => boolean;
  /**
   * Bytes written to the volume since its last snapshot (the engine's live head), or undefined
   * when the engine cannot be asked: then `snapshot` does not skip.
   */
  readonly headSizeBytes?: (volume: Volume) => Promise<number | undefined>;
  /** fstrim of the volume's mounted filesystem; undefined where this manager cannot reach it. */
  readonly trimFilesystem?: (volume: Volume) => Promise<string>;
}

export interface RunRef {
  readonly number: number;
  readonly slotMs: number;
}

/** A task refused or failed for this volume; the message is the volume's outcome. */
export class TaskError extends Error {}

/** The manager is stopping: the run is not finished and is resumed by the next manager. */
export class TaskAbortedError extends Error {}

/** Why a volume is skipped by every task, or undefined when it can be worked on. */
export function skipReason(volume: Volume): string | undefined {
  if (volume.metadata.deletionTimestamp !== undefined) return 'skipped: the volume is being deleted';
  if (volume.status?.restoreRequired === true || volume.status?.isStandby === true) return 'skipped: the volume is restoring or a standby volume';
  if (volume.status?.robustness === 'faulted') return 'skipped: the volume is faulted';
  const state = volume.status?.state ?? 'creating';
  // Longhorn attaches a detached volume for the job when allow-recurring-job-while-volume-detached
  // is on; Shorthorn does not yet, whatever the setting says (docs/recurring-jobs.md).
  if (state !== 'attached') return `skipped: the volume is ${state}; recurring jobs run on attached volumes only`;
  return undefined;
}

async function sleep(context: TaskContext, ms: number): Promise<void> {
  await new Promise<void>((resolve) => context.timers.after(ms, resolve));
}

/** Poll `read` until it says done (returns a value) or the task timeout passes. */
async function waitFor<T>(context: TaskContext, what: string, read: () => Promise<{ done: T } | { waiting: string }>): Promise<T> {
  const deadline = context.clock.monotonicMs() + context.timeoutMs;
  for (;;) {
    if (context.signal.aborted) throw new TaskAbortedError(`${what}: the manager is stopping`);
    const state = await read();
    if ('done' in state) return state.done;
    if (context.clock.monotonicMs() >= deadline) throw new TaskError(`${what}: not done after ${Math.round(context.timeoutMs / 1000)} s (${state.waiting})`);
    await sleep(context, context.pollMs);
  }
}

async function deleteIfPresent(store: ResourceStore, kind: string, name: string): Promise<void> {
  try {
    await store.delete(kind, name);
  } catch (error) {
    if (!isStoreError(error, 'not_found')) throw error;
  }
}

async function createOrFind<R extends Snapshot | Backup>(store: ResourceStore, object: R, sameOwner: (found: R) => boolean): Promise<void> {
  try {
    await store.create(object);
  } catch (error) {
    if (!isStoreError(error, 'already_exists')) throw error;
    // The run was resumed after a crash and made it already; anything else is a name collision.
    const found = (await store.get(object.kind, object.metadata.name)) as R;
    if (!sameOwner(found)) throw new TaskError(`${object.kind} ${object.metadata.name} exists already and is not this run's`);
  }
}

async function takeSnapshot(context: TaskContext, job: RecurringJob, run: RunRef, volume: string): Promise<string> {
  const name = artifactName(job.metadata.name, run.slotMs, volume);
  const snapshot: Snapshot = {
    apiVersion,
    kind: 'Snapshot',
    metadata: { name, labels: artifactLabels(job.metadata.name, run.slotMs, volume) },
    spec: { volume, createSnapshot: true, labels: { ...job.spec.labels, [chainJobLabel]: job.metadata.name } },
  };
  await createOrFind(context.store, snapshot, (found) => found.spec.volume === volume && found.metadata.labels?.[artifactJobLabel] === job.metadata.name);
  await waitFor(context, `snapshot ${name}`, async () => {
    let found: Snapshot;
    try {
      found = (await context.store.get('Snapshot', name)) as Snapshot;
    } catch (error) {
      if (isStoreError(error, 'not_found')) throw new TaskError(`snapshot ${name} was deleted before it was ready`, { cause: error });
      throw error;
    }
    if (found.status?.readyToUse === true) return { done: undefined };
    if (found.status?.markRemoved === true || found.metadata.deletionTimestamp !== undefined) throw new TaskError(`snapshot ${name} was deleted before it was ready`);
    return { waiting: found.status?.error ?? 'not ready yet' };
  });
  return name;
}

/** Delete the job's own snapshots of the volume beyond `keep`, oldest first; the names deleted. */
async function retainSnapshots(context: TaskContext, job: RecurringJob, volume: string, keep: number): Promise<string[]> {
  const { items } = await context.store.list('Snapshot', { labelSelector: `${artifactJobLabel}=${job.metadata.name},${artifactVolumeLabel}=${volume}` });
  const doomed = beyondRetain(ownArtifacts(items as Snapshot[], job.metadata.name, volume), keep);
  for (const snapshot of doomed.reverse()) await deleteIfPresent(context.store, 'Snapshot', snapshot.metadata.name);
  return doomed.map((s) => s.metadata.name);
}

async function requestPurge(context: TaskContext, volumeName: string): Promise<void> {
  const now = new Date(context.clock.nowMs()).toISOString();
  for (let attempt = 1; ; attempt++) {
    const volume = (await context.store.get('Volume', volumeName)) as Volume;
    const next: Volume = { ...volume, metadata: { ...volume.metadata, annotations: { ...volume.metadata.annotations, [purgeAnnotation]: now } } };
    try {
      await context.store.update(next);
      return;
    } catch (error) {
      if (!isStoreError(error, 'conflict') || attempt >= 8) throw error;
    }
  }
}

async function volumeSnapshots(context: TaskContext, volume: string): Promise<Snapshot[]> {
  const { items } = await context.store.list('Snapshot');
  return (items as Snapshot[]).filter((s) => s.spec.volume === volume);
}

async function backUp(context: TaskContext, job: RecurringJob, run: RunRef & { volume: string; snapshotName: string }): Promise<string> {
  const { volume, snapshotName } = run;
  const name = artifactName(job.metadata.name, run.slotMs, volume);
  const mode = backupModeForRun(run.number, job.spec.parameters['full-backup-interval']);
  const backup: Backup = {
    apiVersion,
    kind: 'Backup',
    metadata: { name, labels: { ...artifactLabels(job.metadata.name, run.slotMs, volume), [backupVolumeLabel]: volume } },
    spec: { snapshotName, labels: { ...job.spec.labels, [chainJobLabel]: job.metadata.name }, backupMode: mode },
  };
  await createOrFind(context.store, backup, (found) => found.spec.snapshotName === snapshotName);
  await waitFor(context, `backup ${name}`, async () => {
    const found = (await context.store.get('Backup', name)) as Backup;
    switch (found.status?.state) {
      case 'Completed':
        return { done: undefined };
      case 'Error':
      case 'Unknown':
        throw new TaskError(`backup ${name} failed: ${found.status.error ?? found.status.state}`);
      case 'Pending':
      case 'InProgress':
      case undefined:
        return { waiting: found.status?.messages?.['waiting'] ?? `state ${found.status?.state ?? 'new'}` };
    }
  });
  return `${name} (${mode})`;
}

async function retainBackups(context: TaskContext, job: RecurringJob, volume: string): Promise<string[]> {
  const { items } = await context.store.list('Backup', { labelSelector: `${artifactJobLabel}=${job.metadata.name},${artifactVolumeLabel}=${volume}` });
  const doomed = beyondRetain(ownArtifacts(items as Backup[], job.metadata.name, volume), job.spec.retain);
  for (const backup of doomed.reverse()) await deleteIfPresent(context.store, 'Backup', backup.metadata.name);
  return doomed.map((b) => b.metadata.name);
}

/**
 * Longhorn's `snapshot` skips a volume with nothing written since its last snapshot. A run resumed
 * after a crash whose snapshot exists already goes on (its retention is still to do).
 */
async function headIsEmpty(context: TaskContext, job: RecurringJob, run: RunRef, volume: Volume): Promise<boolean> {
  if (context.headSizeBytes === undefined) return false;
  try {
    await context.store.get('Snapshot', artifactName(job.metadata.name, run.slotMs, volume.metadata.name));
    return false;
  } catch (error) {
    if (!isStoreError(error, 'not_found')) throw error;
  }
  return (await context.headSizeBytes(volume)) === 0;
}

const deletedText = (names: readonly string[]): string => (names.length === 0 ? '' : `; deleted ${names.join(', ')}`);

/** Run the job's task on one volume; returns the volume's outcome, throws TaskError on failure. */
export async function runTask(context: TaskContext, job: RecurringJob, run: RunRef, volume: Volume): Promise<string> {
  const skip = skipReason(volume);
  if (skip !== undefined) return skip;
  const volumeName = volume.metadata.name;
  const task: RecurringJobTask = job.spec.task;
  try {
    switch (task) {
      case 'snapshot':
      case 'snapshot-force-create': {
        if (task === 'snapshot' && (await headIsEmpty(context, job, run, volume))) {
          return 'skipped: nothing written since the last snapshot (the volume head is empty)';
        }
        const name = await takeSnapshot(context, job, run, volumeName);
        return `snapshot ${name}${deletedText(await retainSnapshots(context, job, volumeName, job.spec.retain))}`;
      }
      case 'backup':
      case 'backup-force-create': {
        const snapshot = await takeSnapshot(context, job, run, volumeName);
        const backup = await backUp(context, job, { ...run, volume: volumeName, snapshotName: snapshot });
        const deletedBackups = await retainBackups(context, job, volumeName);
        // The snapshot of the newest backup stays for the next incremental one.
        const keep = context.backupSnapshotCleanup() ? 1 : job.spec.retain;
        const deletedSnapshots = await retainSnapshots(context, job, volumeName, keep);
        return `backup ${backup}${deletedText(deletedBackups)}${deletedSnapshots.length === 0 ? '' : `; snapshots deleted ${deletedSnapshots.join(', ')}`}`;
      }
      case 'snapshot-cleanup': {
        const doomed = systemSnapshots(await volumeSnapshots(context, volumeName), volumeName);
        for (const snapshot of doomed) await deleteIfPresent(context.store, 'Snapshot', snapshot.metadata.name);
        await requestPurge(context, volumeName);
        return `system snapshots deleted: ${doomed.length}; purge requested`;
      }
      case 'snapshot-delete': {
        const doomed = beyondRetain(userSnapshots(await volumeSnapshots(context, volumeName), volumeName), job.spec.retain, snapshotTime);
        for (const snapshot of doomed.reverse()) await deleteIfPresent(context.store, 'Snapshot', snapshot.metadata.name);
        await requestPurge(context, volumeName);
        return `kept the newest ${job.spec.retain}${deletedText(doomed.map((s) => s.metadata.name))}; purge requested`;
      }
      case 'filesystem-trim':
        if (context.trimFilesystem === undefined) return 'skipped: this manager cannot reach the node where the volume is mounted';
        return await context.trimFilesystem(volume);
      default: {
        const unknown: never = task;
        throw new TaskError(`unknown task ${String(unknown)}`);
      }
    }
  } catch (error) {
    if (error instanceof TaskError || error instanceof TaskAbortedError) throw error;
    throw new TaskError(toError(error).message, { cause: error });
  }
}
