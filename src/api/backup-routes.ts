// Backups in the API (Longhorn's routes, reference §4.2): /v1/backuptargets, /v1/backupvolumes
// with the actions backupList, backupGet, backupDelete, backupVolumeSync (and our backupVerify),
// /v1/backups for a flat list, and the volume action snapshotBackup. Like every other route this
// only reads and writes resources — the manager runs backups and deletes them from the target —
// except backupVerify, which reads the target itself (it changes nothing) when the server was
// given backup access.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../lib/clock.ts';
import { resolveCredentials, type CredentialSource } from '../control/backups/backup-credentials.ts';
import { backupFinalizer, backupVolumeLabel, volumeOfBackup } from '../control/backups/backup-mirror.ts';
import { portErrorCode, type OpenBackupStore, type VerifyResult } from '../control/backups/backup-store-port.ts';
import { targetUrlOfSetting } from '../control/backups/backup-url.ts';
import { restorePending } from '../control/backups/restore-reconcile.ts';
import type { BackupTarget } from '../control/resources/backup-target.ts';
import type { BackupVolume } from '../control/resources/backup-volume.ts';
import type { Backup } from '../control/resources/backup.ts';
import { apiVersion } from '../control/resources/object-meta.ts';
import type { Volume } from '../control/resources/volume.ts';
import { Settings } from '../control/settings/settings.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { ApiError } from './api-error.ts';
import { backupTargetActionNames, backupVolumeActionInputs, backupVolumeActionNames, type BackupNameInput, type BackupVolumeActionName, type SnapshotBackupInput } from './backup-inputs.ts';
import { checkInput } from './input-check.ts';
import { collectionView, resourceView, type CollectionView, type ResourceView } from './resource-view.ts';
import { checkName, getOrNotFound, listLimited, modifyResource } from './store-access.ts';

/** What backupVerify needs; a server without it answers 503 to that action only. */
export interface BackupAccess {
  readonly openBackupStore: OpenBackupStore;
  readonly credentials: CredentialSource;
}

export interface BackupRouteContext {
  readonly store: ResourceStore;
  readonly clock: Clock;
  readonly access?: BackupAccess;
}

export function backupView(backup: Backup): ResourceView {
  return resourceView('backups', backup);
}

function backupVolumeView(bv: BackupVolume): ResourceView {
  return resourceView('backupvolumes', bv, [...backupVolumeActionNames]);
}

const nowText = (clock: Clock): string => new Date(clock.nowMs()).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Volume action snapshotBackup: a Backup resource the manager runs on the volume's engine. */
export async function snapshotBackup(context: BackupRouteContext, volume: Volume, input: SnapshotBackupInput): Promise<ResourceView> {
  const snapshotName = input.snapshotName ?? input.name;
  if (snapshotName === undefined) throw ApiError.invalid('snapshotBackup input', [{ path: 'snapshotName', reason: 'is required' }]);
  if (input.snapshotName !== undefined && input.name !== undefined && input.name !== input.snapshotName) {
    throw ApiError.invalid('snapshotBackup input', [{ path: 'name', reason: 'differs from snapshotName; give one of them' }]);
  }
  const name = volume.metadata.name;
  if (restorePending(volume)) throw new ApiError('conflict', `volume ${name} is being restored from a backup; back it up once the restore has finished`);
  const backup: Backup = {
    apiVersion, kind: 'Backup',
    metadata: { name: `backup-${randomBytes(8).toString('hex')}`, labels: { [backupVolumeLabel]: name }, finalizers: [backupFinalizer] },
    spec: { snapshotName, backupMode: input.backupMode ?? 'incremental', ...(input.labels === undefined ? {} : { labels: input.labels }) },
    status: { state: 'Pending', volumeName: name, snapshotName },
  };
  return backupView((await context.store.create(backup)) as Backup);
}

async function backupOfVolume(store: ResourceStore, volumeName: string, backupName: string): Promise<Backup> {
  const backup = await getOrNotFound<Backup>(store, 'Backup', backupName);
  if (volumeOfBackup(backup) !== volumeName) throw new ApiError('not_found', `backup ${backupName} is not a backup of ${volumeName}`);
  return backup;
}

async function backupsOf(store: ResourceStore, volumeName: string | undefined): Promise<CollectionView> {
  const { items, truncated } = await listLimited<Backup>(store, 'Backup', (b) => volumeName === undefined || volumeOfBackup(b) === volumeName);
  return collectionView('backups', 'backup', items.map(backupView), truncated);
}

async function targetSettings(store: ResourceStore): Promise<{ url: string; secret: string }> {
  const { items } = await store.list('Setting');
  const stored: Record<string, string> = {};
  for (const item of items) {
    const value = (item.spec as { value?: unknown }).value;
    if (typeof value === 'string') stored[item.metadata.name] = value;
  }
  const values = Settings.fromStrings(stored).settings.values;
  return { url: targetUrlOfSetting(values['backup-target']), secret: values['backup-target-credential-secret'] };
}

async function verify(context: BackupRouteContext, volumeName: string, backupName: string): Promise<VerifyResult> {
  const { access } = context;
  if (access === undefined) throw new ApiError('unavailable', 'this API server was started without access to the backup target; verify with the manager\'s host');
  const { url, secret } = await targetSettings(context.store);
  if (url === '') throw new ApiError('conflict', 'no backup target is set (setting backup-target)');
  let credentials: Record<string, string>;
  try {
    credentials = await resolveCredentials(access.credentials, secret);
  } catch (error) {
    throw new ApiError('unavailable', `backup target credentials: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  try {
    const session = await access.openBackupStore(url, credentials);
    try {
      return await session.verifyBackup(volumeName, backupName);
    } finally {
      await session.close();
    }
  } catch (error) {
    switch (portErrorCode(error)) {
      case 'not_found':
        throw new ApiError('not_found', (error as Error).message, { cause: error });
      case 'conflict':
        throw new ApiError('conflict', (error as Error).message, { cause: error });
      case 'invalid':
      case 'unavailable':
        throw new ApiError('unavailable', (error as Error).message, { cause: error });
      case undefined:
        throw error;
    }
  }
}

async function runBackupVolumeAction(context: BackupRouteContext, name: string, action: BackupVolumeActionName, body: unknown): Promise<unknown> {
  const { store, clock } = context;
  await getOrNotFound<BackupVolume>(store, 'BackupVolume', name);
  const input = checkInput<unknown>(backupVolumeActionInputs[action], body, `${action} input`);
  switch (action) {
    case 'backupList':
      return backupsOf(store, name);
    case 'backupGet':
      return backupView(await backupOfVolume(store, name, (input as BackupNameInput).name));
    case 'backupDelete': {
      const backup = await backupOfVolume(store, name, (input as BackupNameInput).name);
      return backupView((await store.delete('Backup', backup.metadata.name)) as Backup);
    }
    case 'backupVolumeSync':
      return backupVolumeView(await modifyResource<BackupVolume>(store, 'BackupVolume', name, (bv) => ({ ...bv, spec: { ...bv.spec, syncRequestedAt: nowText(clock) } })));
    case 'backupVerify': {
      const backupName = (input as BackupNameInput).name;
      await backupOfVolume(store, name, backupName);
      return verify(context, name, backupName);
    }
    default: {
      const unknown: never = action;
      throw new ApiError('bad_request', `unknown action ${String(unknown)}`);
    }
  }
}

function actionOf<T extends string>(query: Record<string, unknown>, names: readonly T[], route: string): T {
  const action = query['action'];
  if (typeof action !== 'string' || !(names as readonly string[]).includes(action)) {
    throw new ApiError('bad_request', `POST ${route} needs ?action= one of ${names.join(', ')}; got ${JSON.stringify(action ?? null)}`);
  }
  return action as T;
}

export function registerBackupRoutes(app: FastifyInstance, context: BackupRouteContext): void {
  const { store, clock } = context;
  app.get('/v1/backuptargets', async () => {
    const { items, truncated } = await listLimited<BackupTarget>(store, 'BackupTarget');
    return collectionView('backuptargets', 'backuptarget', items.map((t) => resourceView('backuptargets', t, [...backupTargetActionNames])), truncated);
  });
  app.get<{ Params: { name: string } }>('/v1/backuptargets/:name', async (request) =>
    resourceView('backuptargets', await getOrNotFound<BackupTarget>(store, 'BackupTarget', request.params.name), [...backupTargetActionNames]),
  );
  app.post<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/backuptargets/:name', async (request) => {
    actionOf(request.query, backupTargetActionNames, '/v1/backuptargets/NAME');
    checkInput(backupVolumeActionInputs.backupVolumeSync, request.body ?? {}, 'backupTargetSync input');
    const target = await modifyResource<BackupTarget>(store, 'BackupTarget', request.params.name, (t) => ({ ...t, spec: { ...t.spec, syncRequestedAt: nowText(clock) } }));
    return resourceView('backuptargets', target, [...backupTargetActionNames]);
  });

  app.get('/v1/backupvolumes', async () => {
    const { items, truncated } = await listLimited<BackupVolume>(store, 'BackupVolume');
    return collectionView('backupvolumes', 'backupvolume', items.map(backupVolumeView), truncated);
  });
  app.get<{ Params: { name: string } }>('/v1/backupvolumes/:name', async (request) => backupVolumeView(await getOrNotFound<BackupVolume>(store, 'BackupVolume', request.params.name)));
  app.delete<{ Params: { name: string } }>('/v1/backupvolumes/:name', async (request) => {
    await getOrNotFound<BackupVolume>(store, 'BackupVolume', request.params.name);
    return backupVolumeView((await store.delete('BackupVolume', request.params.name)) as BackupVolume);
  });
  app.post<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/backupvolumes/:name', async (request) => {
    const action = actionOf(request.query, backupVolumeActionNames, '/v1/backupvolumes/NAME');
    return runBackupVolumeAction(context, request.params.name, action, request.body ?? {});
  });

  app.get<{ Querystring: Record<string, unknown> }>('/v1/backups', async (request) => {
    const volume = request.query['volume'];
    if (volume !== undefined && typeof volume !== 'string') throw new ApiError('bad_request', '?volume= must be given once');
    if (volume !== undefined) checkName(volume, 'volume');
    return backupsOf(store, volume);
  });
  app.get<{ Params: { name: string } }>('/v1/backups/:name', async (request) => backupView(await getOrNotFound<Backup>(store, 'Backup', request.params.name)));
  app.delete<{ Params: { name: string } }>('/v1/backups/:name', async (request) => {
    await getOrNotFound<Backup>(store, 'Backup', request.params.name);
    try {
      return backupView((await store.delete('Backup', request.params.name)) as Backup);
    } catch (error) {
      if (isStoreError(error, 'not_found')) throw new ApiError('not_found', `there is no backup named ${request.params.name}`, { cause: error });
      throw error;
    }
  });
}
