// The `activate` volume action (Longhorn's): a standby (DR) volume becomes a normal one. The API
// only records the wish — a fresh listing of its backup volume is requested first, then
// spec.standby is cleared (and spec.frontend set when given); the manager restores the newest
// backup if the volume does not hold it yet, clears status.isStandby and restoreRequired and
// detaches it (standby-reconcile.ts). Irreversible, as in Longhorn.
import type { Clock } from '../lib/clock.ts';
import { parseBackupUrl } from '../control/backups/backup-url.ts';
import type { BackupVolume } from '../control/resources/backup-volume.ts';
import { validateResource } from '../control/resources/validate-resource.ts';
import type { Volume } from '../control/resources/volume.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { ApiError } from './api-error.ts';
import { volumeView, type ResourceView } from './resource-view.ts';
import { modifyResource } from './store-access.ts';
import type { ActivateInput } from './volume-inputs.ts';

function nowText(clock: Clock): string {
  return new Date(clock.nowMs()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export async function activateStandby(context: { store: ResourceStore; clock: Clock }, volume: Volume, input: ActivateInput): Promise<ResourceView> {
  const { store, clock } = context;
  const name = volume.metadata.name;
  const parsed = parseBackupUrl(volume.spec.fromBackup ?? '');
  if (typeof parsed === 'string') throw new ApiError('conflict', `volume ${name} is not a standby volume with a valid fromBackup: ${parsed}`);
  // The listing is asked for before standby is cleared, so the manager can never activate on a
  // listing older than this request.
  try {
    await modifyResource<BackupVolume>(store, 'BackupVolume', parsed.volumeName, (bv) => ({ ...bv, spec: { ...bv.spec, syncRequestedAt: nowText(clock) } }));
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 'not_found') && !isStoreError(error, 'not_found')) throw error;
    throw new ApiError('conflict', `volume ${name}: backup volume ${parsed.volumeName} is not known to the cluster (is the backup target set and reachable?); it cannot be activated before its newest backup is known`);
  }
  const stored = await modifyResource<Volume>(store, 'Volume', name, (current) => {
    const frontend = input.frontend ?? current.spec.frontend;
    if (!current.spec.standby && current.spec.frontend === frontend) return null;
    const next: Volume = { ...current, spec: { ...current.spec, standby: false, frontend } };
    const checked = validateResource('Volume', next);
    if (!checked.ok) throw ApiError.invalid(`volume ${name}`, checked.problems);
    return next;
  });
  return volumeView(stored);
}
