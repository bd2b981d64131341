// The snapshots and backups a recurring job makes: their names, the labels that mark them as the
// job's own, and which of them retention deletes. Pure.
//
// Ownership is in metadata.labels, which the API never lets a user set on a snapshot (a user's
// labels go to spec.labels), so retention can never take a user's or another job's snapshot.
// Names are derived from (job, slot, volume): a run interrupted by a crash and resumed after a
// restart makes the same names again, finds them made, and so never makes a second snapshot.
import type { Resource } from '../resources/object-meta.ts';

/** Label naming the volume of a Snapshot or Backup (the API's snapshotVolumeLabel). */
export const artifactVolumeLabel = 'shorthornvolume';
/** Label naming the recurring job that made a snapshot or backup (Longhorn's `RecurringJob`). */
export const artifactJobLabel = 'shorthorn.io/recurring-job';
/** Label holding the run's slot in Unix seconds, to order a job's artifacts. */
export const artifactSlotLabel = 'shorthorn.io/recurring-job-slot';
/** Longhorn's label key on the snapshot's own (chain) labels. */
export const chainJobLabel = 'RecurringJob';

/** FNV-1a, 32 bits, as 8 hex digits: a short stable tag of a volume name. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** `<job>-<slot seconds, base 36>-<volume tag>`: at most 40 + 1 + 7 + 1 + 8 = 57 characters. */
export function artifactName(job: string, slotMs: number, volume: string): string {
  return `${job}-${Math.floor(slotMs / 1000).toString(36)}-${shortHash(volume)}`;
}

export function artifactLabels(job: string, slotMs: number, volume: string): Record<string, string> {
  return { [artifactVolumeLabel]: volume, [artifactJobLabel]: job, [artifactSlotLabel]: String(Math.floor(slotMs / 1000)) };
}

interface Artifact extends Resource {
  readonly status?: unknown;
}

function isGone(item: Artifact): boolean {
  const status = item.status as { markRemoved?: unknown } | undefined;
  return item.metadata.deletionTimestamp !== undefined || status?.markRemoved === true;
}

/** The job's own live artifacts of one volume. */
export function ownArtifacts<T extends Artifact>(items: readonly T[], job: string, volume: string): T[] {
  return items.filter((item) => {
    const labels = item.metadata.labels ?? {};
    return labels[artifactJobLabel] === job && labels[artifactVolumeLabel] === volume && !isGone(item);
  });
}

function slotOf(item: Artifact): number {
  const text = item.metadata.labels?.[artifactSlotLabel];
  const slot = text === undefined ? NaN : Number(text);
  if (Number.isFinite(slot)) return slot * 1000;
  const created = Date.parse(item.metadata.creationTimestamp ?? '');
  return Number.isFinite(created) ? created : 0;
}

/** Newest first: by slot (or creation time), then name, so the order is total and stable. */
export function newestFirst<T extends Artifact>(items: readonly T[], timeOf: (item: T) => number = slotOf): T[] {
  return [...items].sort((a, b) => timeOf(b) - timeOf(a) || (a.metadata.name < b.metadata.name ? 1 : a.metadata.name > b.metadata.name ? -1 : 0));
}

/** What retention deletes: everything but the newest `retain`, oldest last in the list. */
export function beyondRetain<T extends Artifact>(items: readonly T[], retain: number, timeOf?: (item: T) => number): T[] {
  return newestFirst(items, timeOf).slice(Math.max(0, retain));
}

/** A snapshot's time for `snapshot-delete`, which orders snapshots of every creator. */
export function snapshotTime(item: Artifact): number {
  const status = item.status as { creationTime?: unknown } | undefined;
  const fromStatus = typeof status?.creationTime === 'string' ? Date.parse(status.creationTime) : NaN;
  if (Number.isFinite(fromStatus)) return fromStatus;
  return slotOf(item);
}

/** Live snapshots of a volume that are not system snapshots (user's and every job's). */
export function userSnapshots<T extends Artifact & { spec: { volume: string } }>(items: readonly T[], volume: string): T[] {
  return items.filter((item) => item.spec.volume === volume && !isGone(item) && (item.status as { userCreated?: unknown } | undefined)?.userCreated !== false);
}

/** Live system snapshots of a volume (made by rebuild, expansion, restore): snapshot-cleanup's. */
export function systemSnapshots<T extends Artifact & { spec: { volume: string } }>(items: readonly T[], volume: string): T[] {
  return items.filter((item) => item.spec.volume === volume && !isGone(item) && (item.status as { userCreated?: unknown } | undefined)?.userCreated === false);
}

/** Full or incremental for run number `run` (1-based): full when run % interval == 0 (Longhorn). */
export function backupModeForRun(run: number, fullBackupInterval: number | undefined): 'full' | 'incremental' {
  return fullBackupInterval !== undefined && fullBackupInterval > 0 && run % fullBackupInterval === 0 ? 'full' : 'incremental';
}
