// Contract tests of the backup routes over a real embedded store: snapshotBackup, backup
// volumes and their actions, backup targets, restore through volume create, attach refused while
// restoring, and backupVerify against a real directory target (a corrupted block is reported).
// Hostile bodies get a 4xx with a code, never a 5xx.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openLibraryBackupStore } from '../bin/backup-store-adapter.ts';
import { BackupStore } from '../backup/backup-store.ts';
import { createBackup } from '../backup/create-backup.ts';
import { DirectoryTarget } from '../backup/directory-target.ts';
import { fastLock, seededVolume } from '../backup/testing/backup-fixture.ts';
import { SeededRandom } from '../lib/random.ts';
import { ManualClock } from '../lib/clock.ts';
import { createApiServer } from './api-server.ts';
import { startApiFixture, type ApiFixture, type ApiReply } from './testing/api-fixture.ts';

let api: ApiFixture;
before(async () => {
  api = await startApiFixture();
  await api.seedNode('node-1');
  const created = await api.call('POST', '/v1/volumes', { body: { name: 'vol-a', size: '64Mi', numberOfReplicas: 1 } });
  assert.equal(created.status, 201, created.text);
  await api.setVolumeStatus('vol-a', { state: 'attached', robustness: 'healthy' });
});
after(async () => {
  await api.close();
});

function expectError(reply: ApiReply, status: number, code: string): void {
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.body['code'], code, reply.text);
  assert.equal(typeof reply.body['message'], 'string');
}

test('snapshotBackup makes a Pending Backup resource; hostile inputs are 4xx', async () => {
  const reply = await api.call('POST', '/v1/volumes/vol-a?action=snapshotBackup', { body: { snapshotName: 'snap-1', labels: { app: 'db' }, backupMode: 'full' } });
  assert.equal(reply.status, 200, reply.text);
  assert.match(String(reply.body['id']), /^backup-[0-9a-f]{16}$/);
  const metadata = reply.body['metadata'] as { labels: Record<string, string>; finalizers: string[] };
  assert.equal(metadata.labels['shorthorn.io/backup-volume'], 'vol-a');
  assert.deepEqual(metadata.finalizers, ['shorthorn.io/backup']);
  assert.deepEqual(reply.body['spec'], { snapshotName: 'snap-1', backupMode: 'full', labels: { app: 'db' } });
  assert.equal((reply.body['status'] as { state: string }).state, 'Pending');
  const longhorn = await api.call('POST', '/v1/volumes/vol-a?action=snapshotBackup', { body: { name: 'snap-1' } });
  assert.equal(longhorn.status, 200, 'Longhorn\'s spelling (name) works too');
  const listed = await api.call('GET', '/v1/backups?volume=vol-a');
  assert.equal((listed.body['data'] as unknown[]).length, 2);
  for (const body of [{}, { snapshotName: '../x' }, { snapshotName: 'a', backupMode: 'half' }, { snapshotName: 'a', extra: 1 }, { snapshotName: 'a', name: 'b' }, { snapshotName: 7 }, { snapshotName: 'a', labels: [] }]) {
    expectError(await api.call('POST', '/v1/volumes/vol-a?action=snapshotBackup', { body }), 422, 'invalid');
  }
  expectError(await api.call('POST', '/v1/volumes/vol-a?action=snapshotBackup', { rawBody: '[1,2]' }), 422, 'invalid');
  expectError(await api.call('POST', '/v1/volumes/nope?action=snapshotBackup', { body: { snapshotName: 'a' } }), 404, 'not_found');
  expectError(await api.call('GET', '/v1/backups?volume=../x'), 400, 'invalid_name');
  expectError(await api.call('GET', '/v1/backups/backup-0000000000000000'), 404, 'not_found');
});

test('backup volumes: list, get, actions, delete; unknown names and actions are 4xx', async () => {
  await api.store.create({ apiVersion: 'shorthorn.io/v1', kind: 'BackupVolume', metadata: { name: 'vol-a', finalizers: ['shorthorn.io/backup-volume'] }, spec: {} });
  await api.store.create({ apiVersion: 'shorthorn.io/v1', kind: 'BackupVolume', metadata: { name: 'vol-other' }, spec: {} });
  const list = await api.call('GET', '/v1/backupvolumes');
  assert.deepEqual((list.body['data'] as { id: string }[]).map((v) => v.id), ['vol-a', 'vol-other']);
  const backups = await api.call('POST', '/v1/backupvolumes/vol-a?action=backupList', { body: {} });
  const names = (backups.body['data'] as { id: string }[]).map((b) => b.id);
  assert.equal(names.length, 2);
  const got = await api.call('POST', '/v1/backupvolumes/vol-a?action=backupGet', { body: { name: names[0] } });
  assert.equal(got.body['id'], names[0]);
  expectError(await api.call('POST', '/v1/backupvolumes/vol-other?action=backupGet', { body: { name: names[0] } }), 404, 'not_found');
  const synced = await api.call('POST', '/v1/backupvolumes/vol-a?action=backupVolumeSync', { body: {} });
  assert.equal((synced.body['spec'] as { syncRequestedAt?: string }).syncRequestedAt, '2026-01-01T00:00:00Z');
  const deleted = await api.call('POST', '/v1/backupvolumes/vol-a?action=backupDelete', { body: { name: names[1] } });
  assert.equal(deleted.status, 200, deleted.text);
  assert.ok((deleted.body['metadata'] as { deletionTimestamp?: string }).deletionTimestamp !== undefined, 'the finalizer keeps it until the manager deleted it from the target');
  expectError(await api.call('POST', '/v1/backupvolumes/vol-a?action=backupVerify', { body: { name: names[0] } }), 503, 'unavailable');
  expectError(await api.call('POST', '/v1/backupvolumes/vol-a?action=explode', { body: {} }), 400, 'bad_request');
  expectError(await api.call('POST', '/v1/backupvolumes/vol-a?action=backupGet', { body: { name: '../../etc' } }), 422, 'invalid');
  expectError(await api.call('POST', '/v1/backupvolumes/vol-a?action=backupGet', { body: { name: 'x', more: true } }), 422, 'invalid');
  expectError(await api.call('GET', '/v1/backupvolumes/..%2Fx'), 400, 'invalid_name');
  expectError(await api.call('GET', '/v1/backupvolumes/nope'), 404, 'not_found');
  const gone = await api.call('DELETE', '/v1/backupvolumes/vol-other');
  assert.equal(gone.status, 200);
  expectError(await api.call('GET', '/v1/backupvolumes/vol-other'), 404, 'not_found');
});

test('backup targets: list, get, backupTargetSync', async () => {
  await api.store.create({ apiVersion: 'shorthorn.io/v1', kind: 'BackupTarget', metadata: { name: 'default' }, spec: { backupTargetURL: '', credentialSecret: '', pollInterval: 300 } });
  const list = await api.call('GET', '/v1/backuptargets');
  assert.deepEqual((list.body['data'] as { id: string }[]).map((t) => t.id), ['default']);
  const synced = await api.call('POST', '/v1/backuptargets/default?action=backupTargetSync', { body: {} });
  assert.equal((synced.body['spec'] as { syncRequestedAt?: string }).syncRequestedAt, '2026-01-01T00:00:00Z');
  expectError(await api.call('POST', '/v1/backuptargets/default?action=backupTargetSync', { body: { all: true } }), 422, 'invalid');
  expectError(await api.call('POST', '/v1/backuptargets/default', { body: {} }), 400, 'bad_request');
});

test('restore: volume create with fromBackup (size from the mirrored backup); attach refused until restored', async () => {
  const url = 'vfs:///backups?backup=backup-00000000000000aa&volume=vol-x';
  for (const fromBackup of ['s3://bucket/p', 'vfs:///b?backup=..&volume=v1', 12, 'http://x?backup=b1&volume=v1']) {
    expectError(await api.call('POST', '/v1/volumes', { body: { name: 'vol-bad', size: '64Mi', fromBackup } }), 422, 'invalid');
  }
  const unknown = await api.call('POST', '/v1/volumes', { body: { name: 'vol-bad', fromBackup: url } });
  expectError(unknown, 422, 'invalid');
  assert.match(unknown.text, /not known to the cluster/);
  await api.store.create({
    apiVersion: 'shorthorn.io/v1', kind: 'Backup', metadata: { name: 'backup-00000000000000aa', labels: { 'shorthorn.io/backup-volume': 'vol-x' } },
    spec: { backupMode: 'incremental' }, status: { state: 'Completed', volumeSize: 128 * 1024 * 1024, url },
  });
  const created = await api.call('POST', '/v1/volumes', { body: { name: 'vol-r', fromBackup: url, numberOfReplicas: 1 } });
  assert.equal(created.status, 201, created.text);
  assert.equal((created.body['spec'] as { size: number }).size, 128 * 1024 * 1024);
  await api.setVolumeStatus('vol-r', { state: 'detached' });
  expectError(await api.call('POST', '/v1/volumes/vol-r?action=attach', { body: { hostId: 'node-1' } }), 409, 'conflict');
  expectError(await api.call('POST', '/v1/volumes/vol-r?action=snapshotBackup', { body: { snapshotName: 's' } }), 409, 'conflict');
  await api.setVolumeStatus('vol-r', { restoreRequired: false });
  const attached = await api.call('POST', '/v1/volumes/vol-r?action=attach', { body: { hostId: 'node-1' } });
  assert.equal(attached.status, 200, attached.text);
});

test('backupVerify reads the target: a good backup is ok, a corrupted block is reported', async () => {
  const root = join(api.dir, 'target');
  const store = new BackupStore(new DirectoryTarget(root));
  const volume = seededVolume(4, new SeededRandom(7));
  volume.snapshot('s1');
  await createBackup(store, volume.reader('s1'), { volumeName: 'vol-v', backupName: 'backup-00000000000000bb', lock: fastLock });
  await api.store.create({ apiVersion: 'shorthorn.io/v1', kind: 'BackupVolume', metadata: { name: 'vol-v' }, spec: {} });
  await api.store.create({ apiVersion: 'shorthorn.io/v1', kind: 'Backup', metadata: { name: 'backup-00000000000000bb', labels: { 'shorthorn.io/backup-volume': 'vol-v' } }, spec: { backupMode: 'incremental' } });
  assert.equal((await api.call('PUT', '/v1/settings/backup-target', { body: { value: root } })).status, 200);
  const server = createApiServer({
    store: api.store, token: api.token, clock: new ManualClock(0), log: () => undefined,
    backupAccess: { openBackupStore: openLibraryBackupStore, credentials: { secretsDir: undefined, env: {} } },
  });
  try {
    const verify = async (): Promise<Record<string, unknown>> => {
      const response = await server.app.inject({ method: 'POST', url: '/v1/backupvolumes/vol-v?action=backupVerify', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' }, payload: '{"name":"backup-00000000000000bb"}' });
      assert.equal(response.statusCode, 200, response.body);
      return JSON.parse(response.body) as Record<string, unknown>;
    };
    const good = await verify();
    assert.equal(good['ok'], true);
    assert.ok((good['blocksChecked'] as number) > 0);
    const paths = await store.paths('vol-v');
    const blockDir = join(root, paths.blocksDir);
    const files = await readdir(blockDir, { recursive: true });
    const block = files.find((f) => f.endsWith('.blk'));
    assert.ok(block !== undefined);
    await writeFile(join(blockDir, block), 'not a block');
    const bad = await verify();
    assert.equal(bad['ok'], false);
    assert.equal((bad['corrupt'] as unknown[]).length + (bad['missing'] as unknown[]).length > 0, true);
  } finally {
    await server.close();
    await store.target.close();
  }
});
